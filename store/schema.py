"""The weight store's tables, in SQLAlchemy Core, for SQLite and PostgreSQL alike.

This is the schema at the newest migration (weights/migrations); a change here needs a new
migration there, and tests/weights/test_store.py checks that the two agree.
"""

import sqlalchemy as sa

# SQLite needs INTEGER for an auto-incremented rowid key; PostgreSQL gets a 64-bit identity.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

weight_sets = sa.Table(
    "weight_sets",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mixture", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("weights", sa.Text, nullable=False),  # JSON {policy: weight}
    sa.Column("source", sa.Text, nullable=False),  # 'manifest', 'manual' or 'fit'
    sa.Column("job_id", sa.Text),  # the fit job that produced it
    sa.Column("params", sa.Text),  # JSON fit parameters
    sa.Column("data_hash", sa.Text),  # sha256 of the fit's batch
    sqlite_autoincrement=True,
)

active = sa.Table(
    "active",
    metadata,
    sa.Column("mixture", sa.Text, primary_key=True),
    sa.Column("weight_set", Id, sa.ForeignKey("weight_sets.id"), nullable=False),
    sa.Column("activated", sa.Float, nullable=False),
    # +1 at every activation: what replicas poll to learn that the active set changed
    sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),  # 'fit' or 'eval'
    sa.Column("mixture", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("finished", sa.Float),
    sa.Column("status", sa.Text, nullable=False),  # 'running', 'succeeded', 'failed', 'cancelled'
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("data_hash", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result_set", Id, sa.ForeignKey("weight_sets.id")),
    sa.Column("result", sa.Text),  # JSON summary (fit: weights, objective, trajectory. eval: the table)
    sa.Column("owner", sa.Text),  # the replica running it
    sa.Column("heartbeat", sa.Float),  # when its owner last said it was alive (the lease)
    sa.Column("progress", sa.Text),  # JSON: the live status as of that heartbeat
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    # At most one running job of a kind per mixture, across every replica: a database rule.
    sa.Index(
        "one_running_job",
        "mixture",
        "kind",
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
)

weight_set_evals = sa.Table(
    "weight_set_evals",
    metadata,
    sa.Column("weight_set", Id, sa.ForeignKey("weight_sets.id"), primary_key=True),
    sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("min_win_rate", sa.Float, nullable=False),  # the Min over objectives of this set in that eval
    sa.Column("min_objective", sa.Text, nullable=False),
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mixture", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("voter", sa.Text),  # the API key's fingerprint (sha256, 12 hex digits); None where /v1 is open
    sa.Column("objective", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),  # JSON: text, or chat messages
    sa.Column("chosen", sa.Text, nullable=False),
    sa.Column("rejected", sa.Text, nullable=False),
    sa.Column("chosen_setting", sa.Text),  # JSON: what answered (model, weights...), hidden from the voter
    sa.Column("rejected_setting", sa.Text),
    sqlite_autoincrement=True,
)
