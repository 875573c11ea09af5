"""Jobs of every kind (fit, eval) in one table, and each evaluated weight set's Min.

Stores written before Alembic with PRAGMA user_version 2 are at this revision.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = "id, mixture, created, finished, status, params, data_hash, error, result_set, result"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
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
    op.execute(f"INSERT INTO jobs (kind, {COLUMNS}) SELECT 'fit', {COLUMNS} FROM fit_jobs")
    op.drop_table("fit_jobs")
    op.create_table(
        "weight_set_evals",
        sa.Column("weight_set", Id, sa.ForeignKey("weight_sets.id"), primary_key=True),
        sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("min_win_rate", sa.Float, nullable=False),
        sa.Column("min_objective", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store does not go back to one table of fit jobs")
