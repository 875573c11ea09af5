"""Replicas sharing one store: a version counter on the active set (polled), job leases
(owner, heartbeat), live progress and cancel requests in the job row, and at most one running
job per mixture and kind as a unique index.

Revision ID: 0003
Revises: 0002
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("active", sa.Column("version", sa.BigInteger, nullable=False, server_default="1"))
    for column in (
        sa.Column("owner", sa.Text),
        sa.Column("heartbeat", sa.Float),
        sa.Column("progress", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    ):
        op.add_column("jobs", column)
    # Before this revision one server owned the store: a job still running now has no server.
    op.execute(
        sa.text(
            "UPDATE jobs SET status = 'failed', finished = :now, error = 'the server stopped during the job'"
            " WHERE status = 'running'"
        ).bindparams(now=time.time())
    )
    op.create_index(
        "one_running_job",
        "jobs",
        ["mixture", "kind"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("one_running_job", "jobs")
    for column in ("cancel_requested", "progress", "heartbeat", "owner"):
        op.drop_column("jobs", column)
    op.drop_column("active", "version")
