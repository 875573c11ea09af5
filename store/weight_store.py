"""The weight store: every weight set, manual or fitted, every fit and eval job, and the Min of
each evaluated weight set. SQLite (one file, the default) or PostgreSQL (shared by replicas),
through one code path in SQLAlchemy Core; the schema is versioned by Alembic and brought up to
date when a store is opened.

Each change is one transaction, so an interrupted fit or a crash never leaves half-written
weights: either a weight set (and its activation) is committed whole, or nothing is.

Replicas share the store. The active set carries a version counter that each replica polls
(server.jobs.replica_sync). A running job belongs to one replica (`owner`) and holds a lease it renews
with heartbeats; at most one job of a kind runs per mixture (a unique index, so the rule holds
across processes); a job whose lease ran out is failed by whichever replica sees it first, and
its owner can no longer store a result for it.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from store.schema import active, jobs, weight_set_evals, weight_sets

MAX_ID = 2**63 - 1  # the largest 64-bit integer (SQLite and PostgreSQL), hence the largest weight-set id
HEAD = "0004"  # the newest migration (store/migrations/versions)
START_LOCK = 727_011  # PostgreSQL advisory lock key: replicas starting together migrate and seed one at a time


class JobConflict(Exception):
    """Another job of the same kind is running for this mixture (on any replica)."""

    def __init__(self, job_id: str, owner: str | None) -> None:
        super().__init__(f"job {job_id} is still running (on {owner})")
        self.job_id, self.owner = job_id, owner


class JobLost(Exception):
    """The job is no longer running: its lease ran out (or it was ended) before it stored."""


class StoreUnavailable(Exception):
    """The database cannot be reached (stopped, restarting, unreachable, or locked too long);
    nothing was changed. Trying again later may succeed."""


@dataclass(frozen=True)
class WeightSet:
    id: int
    mixture: str
    created: float
    weights: dict[str, float]
    source: str
    job_id: str | None = None
    params: dict | None = None
    data_hash: str | None = None

    def as_dict(self, active_id: int | None = None) -> dict:
        body = {
            "id": self.id,
            "created": self.created,
            "weights": self.weights,
            "source": self.source,
            "job_id": self.job_id,
            "params": self.params,
            "data_hash": self.data_hash,
        }
        if active_id is not None:
            body["active"] = self.id == active_id
        return body


def _weight_set(row) -> WeightSet:
    return WeightSet(
        row.id,
        row.mixture,
        row.created,
        json.loads(row.weights),
        row.source,
        row.job_id,
        json.loads(row.params) if row.params else None,
        row.data_hash,
    )


def _first_line(err: Exception) -> str:
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]


def _dumps(value: dict | None) -> str | None:
    return json.dumps(value) if value is not None else None


def store_url(location: str | Path) -> str:
    """A SQLAlchemy URL: a path is a SQLite file; postgresql:// URLs get the psycopg driver."""
    text = str(location)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser()}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def _sqlite_engine(url: str) -> Engine:
    """SQLite with real transactions: BEGIN IMMEDIATE takes the write lock at the start, so a
    read-then-write (e.g. claiming a job) cannot interleave with another process's."""
    path = Path(sa.make_url(url).database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi, _record) -> None:
        dbapi.isolation_level = None  # the driver's own transaction handling off; "begin" below
        dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA synchronous=FULL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_engine(location: str | Path) -> Engine:
    url = store_url(location)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # pre_ping: a connection the database dropped (restart, idle timeout) is replaced, not used;
    # a connection attempt to a host that does not answer gives up after 5 s (StoreUnavailable)
    # instead of the operating system's minutes.
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=4, max_overflow=4, pool_timeout=10, connect_args={"connect_timeout": 5}
    )


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def _one_starter_at_a_time(connection: Connection) -> None:
    """Hold PostgreSQL's START_LOCK until the transaction ends (SQLite's BEGIN IMMEDIATE already
    serialises writers), so that a read-then-write at start-up cannot interleave."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": START_LOCK})


def migrate_to(connection: Connection, revision: str = "head") -> None:
    """Bring the store up to `revision` (the newest schema by default) inside the caller's
    transaction.

    Stores from before Alembic (SQLite, versioned by PRAGMA user_version) have no
    alembic_version table: one with a 'fit_jobs' table is at revision 0001, one with 'jobs' at
    0002; they are stamped so, then upgraded."""
    _one_starter_at_a_time(connection)
    config = _alembic(connection)
    tables = set(sa.inspect(connection).get_table_names())
    if "alembic_version" not in tables and "weight_sets" in tables:
        command.stamp(config, "0001" if "fit_jobs" in tables else "0002")
    command.upgrade(config, revision)


class WeightStore:
    """The store of one mixture (several mixtures may share a database)."""

    def __init__(self, location: str | Path, mixture: str) -> None:
        self.engine = open_engine(location)
        self.mixture = mixture
        with self.engine.begin() as connection:
            migrate_to(connection)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; the database's own failures to answer become StoreUnavailable (a
        refused or dropped connection, a timeout), so that callers can tell 'try later' from
        a mistake."""
        try:
            with self.engine.begin() as db:
                yield db
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as err:
            raise StoreUnavailable(f"the weight store cannot be reached: {_first_line(err)}") from err

    def _upsert(self, table: sa.Table):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # Weight sets -------------------------------------------------------------------------

    def add(
        self,
        weights: dict[str, float],
        source: str,
        activate: bool = False,
        job_id: str | None = None,
        params: dict | None = None,
        data_hash: str | None = None,
        job_result: dict | None = None,
    ) -> WeightSet:
        """Store a weight set; in the same transaction, make it active if asked, and with
        job_result mark its fit job succeeded (JobLost, and nothing stored, if that job is no
        longer running)."""
        now = time.time()
        with self.transaction() as db:
            set_id = self._insert(db, weights, source, job_id, params, data_hash)
            if activate:
                self._activate(db, set_id)
            if job_result is not None:
                self._end_job(db, job_id, "succeeded", now, result_set=set_id, result=_dumps(job_result))
        stored = self.get(set_id)
        assert stored is not None
        return stored

    def _insert(self, db: Connection, weights, source, job_id=None, params=None, data_hash=None) -> int:
        return db.execute(
            weight_sets.insert()
            .values(
                mixture=self.mixture,
                created=time.time(),
                weights=json.dumps(weights),
                source=source,
                job_id=job_id,
                params=_dumps(params or None),
                data_hash=data_hash,
            )
            .returning(weight_sets.c.id)
        ).scalar_one()

    def _activate(self, db: Connection, set_id: int) -> int:
        """Make `set_id` active; returns the new version of the active set."""
        now = time.time()
        statement = self._upsert(active).values(mixture=self.mixture, weight_set=set_id, activated=now, version=1)
        statement = statement.on_conflict_do_update(
            index_elements=[active.c.mixture],
            set_={"weight_set": set_id, "activated": now, "version": active.c.version + 1},
        )
        return db.execute(statement.returning(active.c.version)).scalar_one()

    def activate(self, set_id: int) -> WeightSet:
        weight_set = self.get(set_id)
        if weight_set is None:
            raise KeyError(set_id)
        with self.transaction() as db:
            self._activate(db, set_id)
        return weight_set

    def ensure_active(self, weights: dict[str, float], fits) -> tuple[WeightSet, bool]:
        """The active set if there is one and `fits(weights)` accepts it; else `weights` stored
        as a 'manifest' set and activated. One transaction, so replicas that start together
        store the manifest's weights once. Returns the set and whether it was stored now."""
        with self.transaction() as db:
            _one_starter_at_a_time(db)
            row = db.execute(self._active_query()).first()
            if row is not None and fits(json.loads(row.weights)):
                return _weight_set(row), False
            set_id = self._insert(db, weights, "manifest")
            self._activate(db, set_id)
        stored = self.get(set_id)
        assert stored is not None
        return stored, True

    def _active_query(self):
        return (
            sa.select(weight_sets, active.c.version)
            .join(active, active.c.weight_set == weight_sets.c.id)
            .where(active.c.mixture == self.mixture)
        )

    def get(self, set_id: int) -> WeightSet | None:
        if not 0 < set_id <= MAX_ID:  # 64-bit integers stop there; no such set exists
            return None
        with self.transaction() as db:
            row = db.execute(
                sa.select(weight_sets).where(weight_sets.c.id == set_id, weight_sets.c.mixture == self.mixture)
            ).first()
        return _weight_set(row) if row else None

    def active(self) -> WeightSet | None:
        state = self.active_state()
        return state[1] if state else None

    def active_state(self) -> tuple[int, WeightSet] | None:
        """(version, active set): what replicas poll."""
        with self.transaction() as db:
            row = db.execute(self._active_query()).first()
        return (row.version, _weight_set(row)) if row else None

    def history(self, after: int = 0) -> list[WeightSet]:
        """Every weight set of the mixture, oldest first; with `after`, only those stored later
        (ids grow): what a replica polls to learn of new sets."""
        which = (weight_sets.c.mixture == self.mixture, weight_sets.c.id > after)
        with self.transaction() as db:
            rows = db.execute(sa.select(weight_sets).where(*which).order_by(weight_sets.c.id)).all()
        return [_weight_set(r) for r in rows]

    # Jobs (fit and eval) -------------------------------------------------------------

    def start_job(self, job_id: str, kind: str, params: dict, data_hash: str, owner: str | None = None) -> None:
        """Record a running job owned by `owner`; JobConflict if one of its kind already runs."""
        now = time.time()
        try:
            with self.transaction() as db:
                db.execute(
                    jobs.insert().values(
                        id=job_id,
                        kind=kind,
                        mixture=self.mixture,
                        created=now,
                        status="running",
                        params=json.dumps(params),
                        data_hash=data_hash,
                        owner=owner,
                        heartbeat=now,
                    )
                )
        except sa.exc.IntegrityError:
            running = self.running_job(kind)
            if running is None:  # it ended in between; the caller may try again
                raise JobConflict("(just ended)", None) from None
            raise JobConflict(running["id"], running["owner"]) from None

    def running_job(self, kind: str) -> dict | None:
        with self.transaction() as db:
            row = db.execute(
                sa.select(jobs.c.id, jobs.c.owner).where(
                    jobs.c.mixture == self.mixture, jobs.c.kind == kind, jobs.c.status == "running"
                )
            ).first()
        return dict(row._mapping) if row else None

    def _end_job(self, db: Connection, job_id: str | None, status: str, now: float, **values) -> None:
        ended = db.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.status == "running")
            .values(status=status, finished=now, progress=None, **values)
        )
        if ended.rowcount != 1:
            raise JobLost(f"job {job_id} is no longer running (its lease ran out); nothing was stored")

    def finish_job(
        self,
        job_id: str,
        status: str,
        error: str | None = None,
        result_set: int | None = None,
        result: dict | None = None,
        evaluated_sets: dict[int, tuple[float, str]] | None = None,
    ) -> None:
        """Record a running job's outcome (JobLost if it is no longer running); with
        evaluated_sets ({weight set: (Min, its objective)}) an eval's Min is kept with each
        weight set it evaluated, in the same transaction."""
        now = time.time()
        with self.transaction() as db:
            self._end_job(db, job_id, status, now, error=error, result_set=result_set, result=_dumps(result or None))
            for set_id, (min_win_rate, objective) in (evaluated_sets or {}).items():
                db.execute(
                    weight_set_evals.insert().values(
                        weight_set=set_id,
                        job_id=job_id,
                        created=now,
                        min_win_rate=min_win_rate,
                        min_objective=objective,
                    )
                )

    def heartbeat(self, job_id: str, progress: dict) -> bool | None:
        """Renew a running job's lease and publish its progress. Returns whether a cancel was
        requested, or None when the job is no longer running (its lease ran out)."""
        with self.transaction() as db:
            row = db.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(heartbeat=time.time(), progress=json.dumps(progress))
                .returning(jobs.c.cancel_requested)
            ).first()
        return None if row is None else bool(row.cancel_requested)

    def request_cancel(self, job_id: str, kind: str) -> bool:
        """Ask the replica running a job to cancel it; False if no such job is running."""
        which = (jobs.c.id == job_id, jobs.c.kind == kind, jobs.c.mixture == self.mixture, jobs.c.status == "running")
        with self.transaction() as db:
            done = db.execute(jobs.update().where(*which).values(cancel_requested=True))
        return done.rowcount == 1

    def job(self, job_id: str, kind: str) -> dict | None:
        with self.transaction() as db:
            row = db.execute(
                sa.select(jobs).where(jobs.c.id == job_id, jobs.c.kind == kind, jobs.c.mixture == self.mixture)
            ).first()
        if row is None:
            return None
        job = dict(row._mapping)
        for key in ("params", "result", "progress"):
            job[key] = json.loads(job[key]) if job[key] else None
        job["cancel_requested"] = bool(job["cancel_requested"])
        return job

    def recent_jobs(self, limit: int = 50) -> list[dict]:
        """The mixture's latest jobs of every kind, newest first (no results: see job())."""
        columns = (jobs.c.id, jobs.c.kind, jobs.c.status, jobs.c.created, jobs.c.finished, jobs.c.error, jobs.c.owner)
        with self.transaction() as db:
            rows = db.execute(
                sa.select(*columns).where(jobs.c.mixture == self.mixture).order_by(jobs.c.created.desc()).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def latest_evals(self) -> dict[int, dict]:
        """{weight set: its latest eval's job id, Min and worst objective}."""
        with self.transaction() as db:
            rows = db.execute(
                sa.select(weight_set_evals)
                .join(weight_sets, weight_sets.c.id == weight_set_evals.c.weight_set)
                .where(weight_sets.c.mixture == self.mixture)
                .order_by(weight_set_evals.c.created)
            ).all()
        return {
            r.weight_set: {
                "job_id": r.job_id,
                "min_win_rate": r.min_win_rate,
                "min_objective": r.min_objective,
                "created": r.created,
            }
            for r in rows
        }

    def fail_jobs(self, owner: str | None = None, lease_s: float | None = None) -> list[str]:
        """Fail running jobs that have no live replica: those of `owner` (a replica starting
        again under its old name), and those whose heartbeat is older than `lease_s`."""
        now = time.time()
        conditions = []
        if owner is not None:
            conditions.append(jobs.c.owner == owner)
        if lease_s is not None:
            conditions.append(sa.or_(jobs.c.heartbeat.is_(None), jobs.c.heartbeat < now - lease_s))
        if not conditions:
            return []
        which = sa.and_(jobs.c.status == "running", jobs.c.mixture == self.mixture, sa.or_(*conditions))
        with self.transaction() as db:
            failed = db.execute(
                jobs.update()
                .where(which)
                .values(status="failed", finished=now, progress=None, error="the replica running it stopped")
                .returning(jobs.c.id, jobs.c.created)
            ).all()
        return [row.id for row in sorted(failed, key=lambda row: row.created)]
