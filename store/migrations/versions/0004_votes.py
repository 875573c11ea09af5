"""Preference votes: a person's choice between two answers to one prompt, for one objective
(the playground's blind compare), exported as preference pairs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "votes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("mixture", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("voter", sa.Text),
        sa.Column("objective", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("chosen", sa.Text, nullable=False),
        sa.Column("rejected", sa.Text, nullable=False),
        sa.Column("chosen_setting", sa.Text),
        sa.Column("rejected_setting", sa.Text),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("votes")
