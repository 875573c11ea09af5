"""How a server stops and what its restart finds (server.api.shutdown), on one replica's
successive server processes (the same data folder and replica name): killed outright during a fit,
it comes back with the active weights applied in the engine, the job failed and the history intact;
an engine killed under a stream ends it with an error event, /health answers 503, the process exits
non-zero within seconds and its restart serves the same active weights; SIGTERM drains (the stream
in flight completes, new work is refused with 503, a running fit ends failed "shutdown" and stores
nothing, exit 0).

The tests take the replica as the one before left it (a restart is half a minute here, and every
test ends with one): `Replica.live()` starts a new life if the last one is gone."""

import json
import signal
import threading
import time

import httpx
import pytest

from store.weight_store import WeightStore
from tests.jobs import LONG_FIT, wait_for_sampling
from tests.server_process import ServerProcess, admin_client, greedy


class Replica:
    """One replica's data folder and its server processes, one life after another."""

    def __init__(self, manifest, folder) -> None:
        self.manifest, self.folder, self.lives = manifest, folder, 0
        self.server: ServerProcess | None = None

    def live(self) -> ServerProcess:
        """The running server, or a new life of it."""
        if self.server is None or self.server.process.poll() is not None:
            if self.server is not None:
                self.server.stop()
            self.lives += 1
            env = {"MPO_REPLICA_NAME": "restart-test", "MPO_DRAIN_S": "60"}
            self.server = ServerProcess(self.manifest, self.folder, self.folder / f"life-{self.lives}.log", env=env)
            self.server.wait_ready()
        return self.server

    def store(self) -> WeightStore:
        return WeightStore(self.folder / "weights.sqlite", "test-mix")


@pytest.fixture(scope="module")
def replica(test_manifest, tmp_path_factory):
    replica = Replica(test_manifest, tmp_path_factory.mktemp("replica"))
    yield replica
    if replica.server is not None:
        replica.server.stop()


def stream_events(url: str, tokens: int, events: list, done: threading.Event) -> None:
    """A streamed completion's data lines, gathered into `events` as they come."""
    body = {"model": "test-mix", "prompt": "Once", "max_tokens": tokens, "ignore_eos": True, "stream": True}
    body["stream_options"] = {"include_usage": True}
    try:
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as response:
            events.append(response.status_code)
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(line.removeprefix("data:").strip())
    finally:
        done.set()


def start_stream(url: str, tokens: int) -> tuple[list, threading.Event]:
    events: list = []
    done = threading.Event()
    threading.Thread(target=stream_events, args=(url, tokens, events, done), daemon=True).start()
    deadline = time.monotonic() + 30
    while len(events) < 3:  # the status and two events: it is generating
        assert time.monotonic() < deadline and not done.is_set(), events
        time.sleep(0.01)
    return events, done


def test_killing_the_server_during_a_fit_loses_nothing(replica):
    """Its next life (the same replica name) fails its own interrupted job at once (another
    replica's job would fail when its lease runs out; tests/server/test_replicas.py)."""
    chosen = {"alpha": 0.8, "beta": 0.2}
    first = replica.live()
    with admin_client(first) as admin:
        active = admin.put("/admin/weights", json={"weights": chosen}).json()["active_weight_set"]
        history = admin.get("/admin/weights/history").json()["data"]
        job = admin.post("/admin/fit", json=LONG_FIT).json()["id"]
        wait_for_sampling(admin, job)
    first.kill()

    with admin_client(replica.live()) as admin:
        status = admin.get(f"/admin/fit/{job}").json()
        assert status["phase"] == "failed" and "stopped" in status["error"]
        assert status["result_weight_set"] is None
        mixture = admin.get("/admin/mixture").json()
        assert mixture["active_weight_set"] == active and mixture["default_weights"] == chosen
        assert admin.get("/admin/weights/history").json()["data"] == history
        # The engine itself runs the restored weights, not the manifest's defaults.
        assert greedy(admin, None) == greedy(admin, chosen)
        assert greedy(admin, None) != greedy(admin, {"alpha": 0.5, "beta": 0.5})


def test_an_engine_that_dies_ends_streams_with_an_error_and_the_process_exits_for_a_restart(replica):
    server = replica.live()
    chosen = {"alpha": 0.9, "beta": 0.1}
    with admin_client(server) as admin:
        admin.put("/admin/weights", json={"weights": chosen}).raise_for_status()
    events, done = start_stream(server.url, tokens=500)
    server.engine_process().kill()
    killed = time.monotonic()
    health = None
    while health is None and time.monotonic() - killed < 5:
        answer = httpx.get(f"{server.url}/health", timeout=5)
        health = answer if answer.status_code == 503 else None
    assert done.wait(10), "the stream did not end"
    code = server.process.wait(10)
    exited = time.monotonic() - killed
    print(f"/health 503 and exit {code} {exited:.1f} s after the engine was killed")
    assert health is not None
    assert code != 0 and exited < 10
    assert events[0] == 200 and events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "engine_dead" and "restart" in error["message"]
    with admin_client(replica.live()) as admin:
        assert admin.get("/admin/mixture").json()["default_weights"] == chosen
        assert greedy(admin, None) == greedy(admin, chosen)


def test_sigterm_drains_streams_refuses_new_work_fails_the_fit_and_exits_zero(replica):
    server = replica.live()
    with admin_client(server) as admin:
        active = admin.put("/admin/weights", json={"weights": {"alpha": 0.7, "beta": 0.3}}).json()
        history = admin.get("/admin/weights/history").json()["data"]
        job = admin.post("/admin/fit", json=LONG_FIT).json()["id"]
        wait_for_sampling(admin, job, timeout=60)
        events, done = start_stream(server.url, tokens=400)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        health = refused = None
        while time.monotonic() - signalled < 5 and (health is None or refused is None):
            if health is None and (answer := httpx.get(f"{server.url}/health")).status_code == 503:
                health = answer
            body = {"model": "test-mix", "prompt": "Hello", "max_tokens": 4}
            if refused is None and (answer := httpx.post(f"{server.url}/v1/completions", json=body)).status_code == 503:
                refused = answer
        assert health is not None and "stopping" in health.json()["error"]["message"]
        assert refused is not None and refused.json()["error"]["code"] == "server_shutting_down"
        assert refused.headers["Retry-After"] == "1"
        late_fit = admin.post("/admin/fit", json=LONG_FIT)
        assert late_fit.status_code == 503 and "stopping" in late_fit.json()["error"]["message"]
    assert done.wait(60), "the stream in flight did not finish"
    assert events[0] == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["usage"]["completion_tokens"] == 400  # whole, not cut
    assert server.process.wait(60) == 0
    print(f"exited {time.monotonic() - signalled:.1f} s after SIGTERM")
    store = replica.store()
    fit = store.job(job, "fit")
    assert fit["status"] == "failed" and fit["error"].startswith("shutdown") and fit["result_set"] is None
    assert store.active().id == active["active_weight_set"]
    assert [w.id for w in store.history()] == [w["id"] for w in reversed(history)]  # nothing stored by the fit
