"""The first schema: weight sets, the active one per mixture, fit jobs.

Stores written before Alembic (SQLite, PRAGMA user_version 0 or 1) are at this revision.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "weight_sets",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("mixture", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("params", sa.Text),
        sa.Column("data_hash", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "active",
        sa.Column("mixture", sa.Text, primary_key=True),
        sa.Column("weight_set", Id, sa.ForeignKey("weight_sets.id"), nullable=False),
        sa.Column("activated", sa.Float, nullable=False),
    )
    op.create_table(
        "fit_jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("mixture", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("finished", sa.Float),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("data_hash", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result_set", Id, sa.ForeignKey("weight_sets.id")),
        sa.Column("result", sa.Text),
    )


def downgrade() -> None:
    for table in ("fit_jobs", "active", "weight_sets"):
        op.drop_table(table)
