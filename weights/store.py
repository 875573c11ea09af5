"""The weight store: every weight set, manual or fitted, every fit and eval job, and the Min of
each evaluated weight set, in one SQLite file.

Each change is one transaction, so an interrupted fit or a crash never leaves half-written
weights: either a weight set (and its activation) is committed whole, or nothing is. The
active set is re-applied when the server starts; jobs still marked running then were
interrupted and are marked failed.
"""

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS weight_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mixture TEXT NOT NULL,
    created REAL NOT NULL,
    weights TEXT NOT NULL,          -- JSON {policy: weight}
    source TEXT NOT NULL,           -- 'manifest', 'manual' or 'fit'
    job_id TEXT,                    -- the fit job that produced it
    params TEXT,                    -- JSON fit parameters
    data_hash TEXT                  -- sha256 of the fit's batch
);
CREATE TABLE IF NOT EXISTS active (
    mixture TEXT PRIMARY KEY,
    weight_set INTEGER NOT NULL REFERENCES weight_sets(id),
    activated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,             -- 'fit' or 'eval'
    mixture TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,           -- 'running', 'succeeded', 'failed', 'cancelled'
    params TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    error TEXT,
    result_set INTEGER REFERENCES weight_sets(id),
    result TEXT                     -- JSON summary (fit: weights, objective, trajectory. eval: the table)
);
CREATE TABLE IF NOT EXISTS weight_set_evals (
    weight_set INTEGER NOT NULL REFERENCES weight_sets(id),
    job_id TEXT NOT NULL REFERENCES jobs(id),
    created REAL NOT NULL,
    min_win_rate REAL NOT NULL,     -- the Min over objectives of this set in that eval
    min_objective TEXT NOT NULL,
    PRIMARY KEY (weight_set, job_id)
);
"""
SCHEMA_VERSION = 2
# Version 1 kept fit jobs alone in a table 'fit_jobs'; version 2 keeps every kind in 'jobs'.
MIGRATE_1_TO_2 = """
INSERT INTO jobs (id, kind, mixture, created, finished, status, params, data_hash, error, result_set, result)
    SELECT id, 'fit', mixture, created, finished, status, params, data_hash, error, result_set, result FROM fit_jobs;
DROP TABLE fit_jobs;
"""

MAX_ID = 2**63 - 1  # the largest SQLite integer, hence the largest weight-set id


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


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


def _weight_set(row: sqlite3.Row) -> WeightSet:
    return WeightSet(
        row["id"],
        row["mixture"],
        row["created"],
        json.loads(row["weights"]),
        row["source"],
        row["job_id"],
        json.loads(row["params"]) if row["params"] else None,
        row["data_hash"],
    )


class WeightStore:
    def __init__(self, path: str | Path, mixture: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.mixture = mixture
        with self._connect() as db:
            self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Create the schema, or bring a store written by an older version up to date, in one
        transaction (PRAGMA user_version holds the version). Statements are split at semicolons,
        so the schema has none elsewhere."""
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            _execute_script(db, SCHEMA)
            if version < 2 and "fit_jobs" in tables:
                _execute_script(db, MIGRATE_1_TO_2)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self):
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

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
        job_result mark its fit job succeeded."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO weight_sets (mixture, created, weights, source, job_id, params, data_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.mixture,
                    now,
                    json.dumps(weights),
                    source,
                    job_id,
                    json.dumps(params) if params else None,
                    data_hash,
                ),
            )
            set_id = cursor.lastrowid
            if activate:
                self._activate(db, set_id)
            if job_result is not None:
                db.execute(
                    "UPDATE jobs SET status = 'succeeded', finished = ?, result_set = ?, result = ? WHERE id = ?",
                    (now, set_id, json.dumps(job_result), job_id),
                )
        stored = self.get(set_id)
        assert stored is not None
        return stored

    def _activate(self, db: sqlite3.Connection, set_id: int) -> None:
        db.execute(
            "INSERT INTO active (mixture, weight_set, activated) VALUES (?, ?, ?)"
            " ON CONFLICT(mixture) DO UPDATE SET weight_set = excluded.weight_set, activated = excluded.activated",
            (self.mixture, set_id, time.time()),
        )

    def activate(self, set_id: int) -> WeightSet:
        weight_set = self.get(set_id)
        if weight_set is None:
            raise KeyError(set_id)
        with self._transaction() as db:
            self._activate(db, set_id)
        return weight_set

    def get(self, set_id: int) -> WeightSet | None:
        if not 0 < set_id <= MAX_ID:  # SQLite's integers stop there; no such set exists
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM weight_sets WHERE id = ? AND mixture = ?", (set_id, self.mixture)
            ).fetchone()
        return _weight_set(row) if row else None

    def active(self) -> WeightSet | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT w.* FROM active a JOIN weight_sets w ON w.id = a.weight_set WHERE a.mixture = ?",
                (self.mixture,),
            ).fetchone()
        return _weight_set(row) if row else None

    def history(self) -> list[WeightSet]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM weight_sets WHERE mixture = ? ORDER BY id", (self.mixture,)).fetchall()
        return [_weight_set(r) for r in rows]

    # Jobs (fit and eval) -------------------------------------------------------------

    def start_job(self, job_id: str, kind: str, params: dict, data_hash: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, mixture, created, status, params, data_hash)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (job_id, kind, self.mixture, time.time(), json.dumps(params), data_hash),
            )

    def finish_job(
        self,
        job_id: str,
        status: str,
        error: str | None = None,
        result_set: int | None = None,
        result: dict | None = None,
        evaluated_sets: dict[int, tuple[float, str]] | None = None,
    ) -> None:
        """Record a job's outcome; with evaluated_sets ({weight set: (Min, its objective)}) an
        eval's Min is kept with each weight set it evaluated, in the same transaction."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished = ?, error = ?, result_set = ?, result = ? WHERE id = ?",
                (status, now, error, result_set, json.dumps(result) if result else None, job_id),
            )
            for set_id, (min_win_rate, objective) in (evaluated_sets or {}).items():
                db.execute(
                    "INSERT INTO weight_set_evals (weight_set, job_id, created, min_win_rate, min_objective)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (set_id, job_id, now, min_win_rate, objective),
                )

    def job(self, job_id: str, kind: str) -> dict | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE id = ? AND kind = ? AND mixture = ?", (job_id, kind, self.mixture)
            ).fetchone()
        if row is None:
            return None
        job = dict(row)
        job["params"] = json.loads(job["params"])
        job["result"] = json.loads(job["result"]) if job["result"] else None
        return job

    def latest_evals(self) -> dict[int, dict]:
        """{weight set: its latest eval's job id, Min and worst objective}."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT e.* FROM weight_set_evals e JOIN weight_sets w ON w.id = e.weight_set"
                " WHERE w.mixture = ? ORDER BY e.created",
                (self.mixture,),
            ).fetchall()
        return {
            r["weight_set"]: {
                "job_id": r["job_id"],
                "min_win_rate": r["min_win_rate"],
                "min_objective": r["min_objective"],
                "created": r["created"],
            }
            for r in rows
        }

    def fail_interrupted_jobs(self) -> list[str]:
        """Jobs still 'running' when the server starts were cut off by a stop or a crash."""
        with self._transaction() as db:
            ids = [
                r["id"]
                for r in db.execute("SELECT id FROM jobs WHERE status = 'running' AND mixture = ?", (self.mixture,))
            ]
            db.execute(
                "UPDATE jobs SET status = 'failed', finished = ?, error = 'the server stopped during the job'"
                " WHERE status = 'running' AND mixture = ?",
                (time.time(), self.mixture),
            )
        return ids
