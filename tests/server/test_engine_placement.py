"""Where the engine's processes run on CPU: each rank's worker on its own cores, and vLLM's
EngineCore pinned beside its workers, off the core left to the front end (server.engine)."""

import os

import pytest

from server.engine import bound_cores, cpu_binding


def test_ranks_get_their_own_cores():
    assert cpu_binding(2, 1) == "0-1" and cpu_binding(2, 2) == "0|1" and cpu_binding(16, 2) == "0-7|8-15"
    with pytest.raises(ValueError, match="at least 4 CPU cores"):
        cpu_binding(2, 4)


def test_the_cores_a_binding_names():
    assert bound_cores("0-1") == {0, 1} and bound_cores("0|1") == {0, 1} and bound_cores("3") == {3}
    assert bound_cores("0,2-3|5") == {0, 2, 3, 5}
    for names_none in ("auto", "nobind", "", "0-x", "a|1"):
        assert bound_cores(names_none) is None, names_none


def test_every_engine_core_thread_runs_on_its_workers_core(server):
    """The test servers bind their worker to core 0 (tests/server_process.py)."""
    engine = server.engine_process()
    threads = engine.threads()
    assert len(threads) > 1
    assert {frozenset(os.sched_getaffinity(thread.id)) for thread in threads} == {frozenset({0})}
    assert os.sched_getaffinity(server.process.pid) == os.sched_getaffinity(0)  # the front end is free
