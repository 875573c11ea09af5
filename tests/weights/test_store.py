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


def test_interrupted_jobs_are_marked_failed(store, tmp_path):
    store.start_job("j1", {"iterations": 5}, "hash")
    store.start_job("j2", {"iterations": 5}, "hash")
    store.finish_job("j2", "succeeded", result={"weights": {"a": 1}})
    assert WeightStore(tmp_path / "weights.sqlite", "mix").fail_interrupted_jobs() == ["j1"]
    assert store.job("j1")["status"] == "failed" and "stopped" in store.job("j1")["error"]
    assert store.job("j2")["status"] == "succeeded" and store.job("j2")["result"] == {"weights": {"a": 1}}


def test_a_fitted_set_and_its_job_succeed_together(store):
    store.start_job("j", {"iterations": 5}, "hash")
    fitted = store.add({"a": 0.3, "b": 0.7}, "fit", activate=True, job_id="j", job_result={"weights": {"a": 0.3}})
    job = store.job("j")
    assert job["status"] == "succeeded" and job["result_set"] == fitted.id and job["result"] == {"weights": {"a": 0.3}}
    assert store.active() == fitted and store.fail_interrupted_jobs() == []
