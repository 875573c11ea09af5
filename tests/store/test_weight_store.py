"""The weight store on both of its backends: a real SQLite file and a real PostgreSQL server."""

import sqlite3
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.schema import metadata
from store.weight_store import HEAD, JobConflict, JobLost, StoreUnavailable, WeightStore, migrate_to, open_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a new store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "weights.sqlite"
    return request.getfixturevalue("postgres").url()


@pytest.fixture
def store(location):
    opened = WeightStore(location, "mix")
    yield opened
    opened.close()


def test_add_activate_history_and_reopen(store, location):
    first = store.add({"a": 0.5, "b": 0.5}, "manifest", activate=True)
    second = store.add({"a": 0.9, "b": 0.1}, "fit", job_id="job1", params={"iterations": 10}, data_hash="abc")
    assert store.active() == first
    store.activate(second.id)
    reopened = WeightStore(location, "mix")
    assert reopened.active() == second and reopened.active().params == {"iterations": 10}
    assert [w.id for w in reopened.history()] == [first.id, second.id]
    assert WeightStore(location, "other").active() is None  # per mixture


def test_history_after_an_id_holds_only_the_sets_stored_since(store):
    first, second, third = (store.add({"a": w, "b": 1 - w}, "manual") for w in (0.1, 0.2, 0.3))
    assert [w.id for w in store.history(after=first.id)] == [second.id, third.id]
    assert store.history(after=third.id) == []


def test_a_database_that_does_not_answer_is_store_unavailable(postgres):
    store = WeightStore(postgres.url(), "mix")
    store.add({"a": 0.5, "b": 0.5}, "manual")
    postgres.pause()
    try:
        for call in (store.active, store.history, lambda: store.add({"a": 1.0, "b": 0.0}, "manual")):
            with pytest.raises(StoreUnavailable, match="the weight store cannot be reached"):
                call()
    finally:
        postgres.resume()
    assert [w.weights for w in store.history()] == [{"a": 0.5, "b": 0.5}]  # the refused write left nothing
    store.close()


def test_every_activation_moves_the_version_replicas_poll(store):
    first = store.add({"a": 0.5, "b": 0.5}, "manifest", activate=True)
    assert store.active_state() == (1, first)
    second = store.add({"a": 0.9, "b": 0.1}, "manual", activate=True)
    assert store.active_state() == (2, second)
    store.activate(first.id)
    store.activate(first.id)  # the same set again is still a change to announce
    assert store.active_state() == (4, first)


def test_activate_unknown_set_raises(store):
    with pytest.raises(KeyError):
        store.activate(42)
    assert store.get(2**63) is None and store.get(0) is None


def test_failed_transaction_leaves_nothing_half_written(store, monkeypatch):
    first = store.add({"a": 1.0, "b": 0.0}, "manual", activate=True)

    def broken(db, set_id):
        raise RuntimeError("disk went away")

    monkeypatch.setattr(store, "_activate", broken)
    with pytest.raises(RuntimeError):
        store.add({"a": 0.0, "b": 1.0}, "fit", activate=True)
    assert store.active() == first and len(store.history()) == 1


def test_the_manifest_set_is_stored_once_and_a_fitting_active_set_kept(store):
    manifest, stored = store.ensure_active({"a": 0.5, "b": 0.5}, lambda w: True)
    again, stored_again = store.ensure_active({"a": 0.5, "b": 0.5}, lambda w: True)
    assert stored and not stored_again and again == manifest and len(store.history()) == 1
    replaced, stored = store.ensure_active({"x": 1.0}, lambda w: sorted(w) == ["x"])  # the policies changed
    assert stored and store.active() == replaced and replaced.weights == {"x": 1.0}


def test_one_running_job_per_kind_and_mixture(store, location):
    store.start_job("f1", "fit", {}, "h", owner="replica-a")
    other = WeightStore(location, "mix")  # another replica
    with pytest.raises(JobConflict) as conflict:
        other.start_job("f2", "fit", {}, "h", owner="replica-b")
    assert conflict.value.job_id == "f1" and conflict.value.owner == "replica-a"
    other.start_job("e1", "eval", {}, "h", owner="replica-b")  # another kind
    WeightStore(location, "other-mix").start_job("f3", "fit", {}, "h", owner="replica-b")  # another mixture
    store.finish_job("f1", "succeeded", result={"weights": {"a": 1}})
    other.start_job("f2", "fit", {}, "h", owner="replica-b")  # free again
    assert store.job("f2", "fit")["owner"] == "replica-b"


def test_replicas_racing_for_a_job_start_exactly_one(location):
    stores = [WeightStore(location, "mix") for _ in range(6)]
    started, barrier = [], threading.Barrier(len(stores))

    def race(n: int) -> None:
        barrier.wait()
        try:
            stores[n].start_job(f"job{n}", "fit", {}, "h", owner=f"replica-{n}")
            started.append(n)
        except JobConflict:
            pass

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1


def test_jobs_of_a_replica_that_starts_again_are_failed(store):
    store.start_job("j2", "fit", {"iterations": 5}, "hash", owner="a")
    store.finish_job("j2", "succeeded", result={"weights": {"a": 1}})
    store.start_job("j1", "fit", {"iterations": 5}, "hash", owner="a")
    store.start_job("e1", "eval", {"seed": 0}, "hash", owner="b")
    assert store.fail_jobs(owner="a") == ["j1"]
    assert store.job("j1", "fit")["status"] == "failed" and "stopped" in store.job("j1", "fit")["error"]
    assert store.job("e1", "eval")["status"] == "running"  # another replica's
    assert store.job("j2", "fit")["status"] == "succeeded" and store.job("j2", "fit")["result"] == {"weights": {"a": 1}}
    assert store.job("e1", "fit") is None  # a job is found under its own kind only


def test_a_lapsed_lease_fails_the_job_and_its_weights_are_never_stored(store, monkeypatch):
    first = store.add({"a": 0.5, "b": 0.5}, "manifest", activate=True)
    store.start_job("f", "fit", {}, "h", owner="b")
    store.start_job("e", "eval", {}, "h", owner="b")
    assert store.heartbeat("f", {"phase": "sampling"}) is False
    assert store.fail_jobs(lease_s=60) == []  # heartbeats are recent
    assert store.job("f", "fit")["progress"] == {"phase": "sampling"}
    assert store.fail_jobs(lease_s=0) == ["f", "e"]
    assert store.heartbeat("f", {"phase": "fitting"}) is None  # the owner learns it lost the job
    with pytest.raises(JobLost):
        store.add({"a": 0.1, "b": 0.9}, "fit", activate=True, job_id="f", job_result={"weights": {}})
    with pytest.raises(JobLost):
        store.finish_job("e", "succeeded", result={"x": 1}, evaluated_sets={first.id: (0.5, "a")})
    assert store.history() == [first] and store.active() == first and store.latest_evals() == {}
    assert store.job("f", "fit")["status"] == "failed" and store.job("f", "fit")["progress"] is None


def test_a_cancel_request_reaches_the_owner_through_its_heartbeat(store):
    store.start_job("f", "fit", {}, "h", owner="b")
    assert not store.request_cancel("f", "eval")  # a job is cancelled under its own kind only
    assert store.heartbeat("f", {}) is False
    assert store.request_cancel("f", "fit") and store.heartbeat("f", {}) is True
    store.finish_job("f", "cancelled")
    assert not store.request_cancel("f", "fit") and not store.request_cancel("missing", "fit")


def test_a_fitted_set_and_its_job_succeed_together(store):
    store.start_job("j", "fit", {"iterations": 5}, "hash", owner="a")
    fitted = store.add({"a": 0.3, "b": 0.7}, "fit", activate=True, job_id="j", job_result={"weights": {"a": 0.3}})
    job = store.job("j", "fit")
    assert job["status"] == "succeeded" and job["result_set"] == fitted.id and job["result"] == {"weights": {"a": 0.3}}
    assert store.active() == fitted and store.fail_jobs(owner="a", lease_s=0) == []


def test_an_eval_keeps_its_min_with_each_evaluated_set(store):
    first = store.add({"a": 0.5, "b": 0.5}, "manifest", activate=True)
    second = store.add({"a": 0.9, "b": 0.1}, "manual")
    store.start_job("e1", "eval", {}, "hash")
    store.finish_job("e1", "succeeded", result={"x": 1}, evaluated_sets={first.id: (0.4, "b"), second.id: (0.3, "a")})
    store.start_job("e2", "eval", {}, "hash")
    store.finish_job("e2", "succeeded", result={"x": 2}, evaluated_sets={first.id: (0.55, "a")})
    latest = store.latest_evals()
    assert latest[first.id]["job_id"] == "e2" and latest[first.id]["min_win_rate"] == 0.55
    expected = {"job_id": "e1", "min_win_rate": 0.3, "min_objective": "a", "created": 0}
    assert latest[second.id] | {"created": 0} == expected


def test_the_migrations_build_exactly_the_schema_the_code_uses(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD


def test_a_store_at_the_first_revision_is_migrated_with_its_fit_jobs(location):
    engine = open_engine(location)
    with engine.begin() as connection:
        migrate_to(connection, "0001")
        for row in V1_ROWS:
            connection.execute(sa.text(row))
    engine.dispose()
    _check_migrated(location)


V1_ROWS = [
    # no explicit id: the first set gets 1 on both backends (and PostgreSQL's sequence moves)
    """INSERT INTO weight_sets (mixture, created, weights, source, job_id, params, data_hash)
       VALUES ('mix', 1.0, '{"a": 1.0}', 'fit', 'old', '{}', 'h')""",
    "INSERT INTO active VALUES ('mix', 1, 1.0)",
    """INSERT INTO fit_jobs VALUES ('old', 'mix', 1.0, 2.0, 'succeeded', '{"iterations": 3}', 'h', NULL, 1,
       '{"weights": {"a": 1.0}}')""",
    """INSERT INTO fit_jobs VALUES ('cut', 'mix', 3.0, NULL, 'running', '{}', 'h', NULL, NULL, NULL)""",
]


def _check_migrated(location) -> None:
    store = WeightStore(location, "mix")
    assert store.active().weights == {"a": 1.0} and store.active_state()[0] == 1
    job = store.job("old", "fit")
    assert job["status"] == "succeeded" and job["params"] == {"iterations": 3} and job["result_set"] == 1
    assert store.job("cut", "fit")["status"] == "failed"  # nobody was running it any more
    assert not sa.inspect(store.engine).has_table("fit_jobs")
    next_set = store.add({"a": 1.0}, "manual")
    assert next_set.id == 2  # the key sequence goes on after the migrated rows
    assert WeightStore(location, "mix").job("old", "fit") == job  # opening again changes nothing


# The tables both hand-written SQLite versions (PRAGMA user_version 1 and 2) had alike.
HAND_WRITTEN_TABLES = """
            CREATE TABLE weight_sets (id INTEGER PRIMARY KEY AUTOINCREMENT, mixture TEXT NOT NULL,
                created REAL NOT NULL, weights TEXT NOT NULL, source TEXT NOT NULL, job_id TEXT,
                params TEXT, data_hash TEXT);
            CREATE TABLE active (mixture TEXT PRIMARY KEY, weight_set INTEGER NOT NULL, activated REAL NOT NULL);
"""


def test_a_sqlite_store_from_before_alembic_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the hand-written schema before eval jobs existed (version 1)
        db.executescript(
            HAND_WRITTEN_TABLES
            + """
            CREATE TABLE fit_jobs (id TEXT PRIMARY KEY, mixture TEXT NOT NULL, created REAL NOT NULL,
                finished REAL, status TEXT NOT NULL, params TEXT NOT NULL, data_hash TEXT NOT NULL,
                error TEXT, result_set INTEGER, result TEXT);
            """
        )
        for row in V1_ROWS:
            db.execute(row)
    _check_migrated(path)


def test_a_sqlite_store_of_the_second_hand_written_version_is_migrated(tmp_path):
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            HAND_WRITTEN_TABLES
            + """
            CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, mixture TEXT NOT NULL,
                created REAL NOT NULL, finished REAL, status TEXT NOT NULL, params TEXT NOT NULL,
                data_hash TEXT NOT NULL, error TEXT, result_set INTEGER, result TEXT);
            CREATE TABLE weight_set_evals (weight_set INTEGER NOT NULL, job_id TEXT NOT NULL,
                created REAL NOT NULL, min_win_rate REAL NOT NULL, min_objective TEXT NOT NULL,
                PRIMARY KEY (weight_set, job_id));
            INSERT INTO weight_sets VALUES (1, 'mix', 1.0, '{"a": 1.0}', 'manual', NULL, NULL, NULL);
            INSERT INTO active VALUES ('mix', 1, 1.0);
            INSERT INTO jobs VALUES ('e', 'eval', 'mix', 1.0, 2.0, 'succeeded', '{}', 'h', NULL, NULL, '{"x": 1}');
            INSERT INTO weight_set_evals VALUES (1, 'e', 2.0, 0.6, 'a');
            PRAGMA user_version = 2;
            """
        )
    store = WeightStore(path, "mix")
    assert store.active().weights == {"a": 1.0} and store.job("e", "eval")["result"] == {"x": 1}
    assert store.latest_evals()[1]["min_win_rate"] == 0.6
