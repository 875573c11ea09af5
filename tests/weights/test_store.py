"""The weight store on a real SQLite file."""

import sqlite3

import pytest

from weights.store import WeightStore


@pytest.fixture
def store(tmp_path) -> WeightStore:
    return WeightStore(tmp_path / "weights.sqlite", "mix")


def test_add_activate_history_and_reopen(store, tmp_path):
    first = store.add({"a": 0.5, "b": 0.5}, "manifest", activate=True)
    second = store.add({"a": 0.9, "b": 0.1}, "fit", job_id="job1", params={"iterations": 10}, data_hash="abc")
    assert store.active() == first
    store.activate(second.id)
    reopened = WeightStore(tmp_path / "weights.sqlite", "mix")
    assert reopened.active() == second and reopened.active().params == {"iterations": 10}
    assert [w.id for w in reopened.history()] == [first.id, second.id]
    assert WeightStore(tmp_path / "weights.sqlite", "other").active() is None  # per mixture


def test_activate_unknown_set_raises(store):
    with pytest.raises(KeyError):
        store.activate(42)


def test_failed_transaction_leaves_nothing_half_written(store, monkeypatch):
    first = store.add({"a": 1.0, "b": 0.0}, "manual", activate=True)

    def broken(db, set_id):
        raise sqlite3.OperationalError("disk went away")

    monkeypatch.setattr(store, "_activate", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.add({"a": 0.0, "b": 1.0}, "fit", activate=True)
    assert store.active() == first and len(store.history()) == 1


def test_interrupted_jobs_of_every_kind_are_marked_failed(store, tmp_path):
    store.start_job("j1", "fit", {"iterations": 5}, "hash")
    store.start_job("j2", "fit", {"iterations": 5}, "hash")
    store.start_job("e1", "eval", {"seed": 0}, "hash")
    store.finish_job("j2", "succeeded", result={"weights": {"a": 1}})
    assert WeightStore(tmp_path / "weights.sqlite", "mix").fail_interrupted_jobs() == ["j1", "e1"]
    assert store.job("j1", "fit")["status"] == "failed" and "stopped" in store.job("j1", "fit")["error"]
    assert store.job("e1", "eval")["status"] == "failed"
    assert store.job("j2", "fit")["status"] == "succeeded" and store.job("j2", "fit")["result"] == {"weights": {"a": 1}}
    assert store.job("e1", "fit") is None  # a job is found under its own kind only


def test_a_fitted_set_and_its_job_succeed_together(store):
    store.start_job("j", "fit", {"iterations": 5}, "hash")
    fitted = store.add({"a": 0.3, "b": 0.7}, "fit", activate=True, job_id="j", job_result={"weights": {"a": 0.3}})
    job = store.job("j", "fit")
    assert job["status"] == "succeeded" and job["result_set"] == fitted.id and job["result"] == {"weights": {"a": 0.3}}
    assert store.active() == fitted and store.fail_interrupted_jobs() == []


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


def test_a_store_of_the_first_schema_is_migrated_with_its_fit_jobs(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema before eval jobs existed (version 1)
        db.executescript(
            """
            CREATE TABLE weight_sets (id INTEGER PRIMARY KEY AUTOINCREMENT, mixture TEXT NOT NULL,
                created REAL NOT NULL, weights TEXT NOT NULL, source TEXT NOT NULL, job_id TEXT,
                params TEXT, data_hash TEXT);
            CREATE TABLE active (mixture TEXT PRIMARY KEY, weight_set INTEGER NOT NULL, activated REAL NOT NULL);
            CREATE TABLE fit_jobs (id TEXT PRIMARY KEY, mixture TEXT NOT NULL, created REAL NOT NULL,
                finished REAL, status TEXT NOT NULL, params TEXT NOT NULL, data_hash TEXT NOT NULL,
                error TEXT, result_set INTEGER, result TEXT);
            INSERT INTO weight_sets VALUES (1, 'mix', 1.0, '{"a": 1.0}', 'fit', 'old', '{}', 'h');
            INSERT INTO active VALUES ('mix', 1, 1.0);
            INSERT INTO fit_jobs VALUES ('old', 'mix', 1.0, 2.0, 'succeeded', '{"iterations": 3}', 'h', NULL, 1,
                '{"weights": {"a": 1.0}}');
            """
        )
    store = WeightStore(path, "mix")
    assert store.active().weights == {"a": 1.0}
    job = store.job("old", "fit")
    assert job["status"] == "succeeded" and job["params"] == {"iterations": 3} and job["result_set"] == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "fit_jobs" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert WeightStore(path, "mix").job("old", "fit") == job  # opening again changes nothing
