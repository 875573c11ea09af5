"""A weight store in PostgreSQL that is slow (store.async_store, server.jobs.weight_sets): streams
keep their inter-token latency while the store's tables are locked by another session. The store
away (PostgreSQL stopped for 20 s) is tested on the replicas of tests/server/test_replicas.py,
which share its cluster."""

import multiprocessing
import threading
import time

import httpx
import psycopg
import pytest

from tests.server_process import ADMIN_TOKEN, ServerProcess, admin_client

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def inter_token(url: str, tokens: int = 400, at_tenth=lambda: None) -> tuple[float, float]:
    """The mean and the 99th percentile of the gaps between a stream's events, in seconds;
    `at_tenth` is called when the tenth event has come."""
    body = {"model": "test-mix", "prompt": "Once", "max_tokens": tokens, "ignore_eos": True, "stream": True}
    arrivals = []
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.perf_counter())
                if len(arrivals) == 10:
                    at_tenth()
    gaps = sorted(b - a for a, b in zip(arrivals[1:-1], arrivals[2:], strict=True))
    # The mean by the clock (vLLM merges tokens into one event when its reader falls behind).
    return (arrivals[-2] - arrivals[1]) / (tokens - 1), gaps[int(0.99 * (len(gaps) - 1))]


def touch_the_store(url: str, stop, slowest, rounds) -> None:
    """The admin's history again and again until `stop` is set; `slowest` gets the longest it
    took (the store's own delay). The server's replica sync reads the store five times a second
    besides."""
    with httpx.Client(base_url=url, headers=ADMIN, timeout=60) as http:
        while not stop.is_set():
            began = time.perf_counter()
            assert http.get("/admin/weights/history").status_code == 200
            slowest.value = max(slowest.value, time.perf_counter() - began)
            rounds.value += 1


class StoreTraffic:
    """touch_the_store in a process of its own: a thread of the test's would share its GIL with
    the stream being timed, and bunch that stream's events into fewer, later reads."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop, self.slowest, self.rounds = context.Event(), context.Value("d", 0.0), context.Value("i", 0)
        args = (url, self.stop, self.slowest, self.rounds)
        self.process = context.Process(target=touch_the_store, args=args)
        self.process.start()
        while not self.rounds.value:  # started (a process's start is busy, and would be timed)
            assert self.process.is_alive()
            time.sleep(0.1)

    def end(self) -> float:
        """Stop; the longest the history took."""
        self.stop.set()
        self.process.join(60)
        assert self.process.exitcode == 0
        return self.slowest.value


@pytest.fixture
def pg_server(test_manifest, postgres, tmp_path):
    url = postgres.url()
    env = {"MPO_STORE_URL": url, "MPO_REPLICA_NAME": "slow-store-test"}
    with ServerProcess(test_manifest, tmp_path, tmp_path / "server.log", env=env) as server:
        yield server, url


def measure(server, url: str) -> tuple[tuple[float, float], tuple[float, float], float, float]:
    """One stream with the store answering and one during which another session locks the
    store's tables, both beside store traffic: their (mean, p99) inter-token gaps, how long the
    second stream went on once the lock was taken, and the longest the admin's history waited."""
    traffic = StoreTraffic(server.url)
    unloaded = inter_token(server.url)
    traffic.end()
    traffic = StoreTraffic(server.url)
    with psycopg.connect(url) as lock:
        # Taken once the stream runs (a store that blocks the event loop then stalls it midway,
        # not before its first token) and held 10 s at most (a gap of seconds, not a stream that
        # never ends); every statement on these tables waits meanwhile.
        release, taken = threading.Timer(10.0, lock.rollback), []

        def take() -> None:
            lock.execute("LOCK TABLE weight_sets, active, jobs IN ACCESS EXCLUSIVE MODE")
            release.start()
            taken.append(time.perf_counter())

        locked = inter_token(server.url, at_tenth=take)
        during = time.perf_counter() - taken[0]
        time.sleep(1.5)  # the history has waited a while, whatever the stream's speed
        release.cancel()
        lock.rollback()
    return unloaded, locked, during, traffic.end()


def test_streams_keep_their_inter_token_latency_while_the_store_is_locked(pg_server):
    server, url = pg_server
    with admin_client(server) as admin:
        assert admin.put("/admin/weights", json={"weights": {"alpha": 0.6, "beta": 0.4}}).status_code == 200
    inter_token(server.url, tokens=50)  # warm
    # Within 2x, with a floor of 10 ms: on this VM a client sees the same stream paced (about 3
    # ms a token) one time and arrive all at once the next (vLLM merges tokens into one output
    # when its reader falls behind), so the unloaded value swings from 0.01 to 3 ms. Up to eight
    # rounds, for this VM sometimes leaves a process asleep for tens of milliseconds and more
    # (one CI round: p99 32 ms unloaded, 98 ms locked, the mean 6.3 and 5.2 ms), which a round
    # measures as well as the store. A round counts only if the stream went on for half a second
    # once the tables were locked (read all at once, it measured nothing: here one round in ten
    # to three in four, though the lock is taken in a millisecond) and the store was slow indeed.
    # A store call on the event loop holds every stream for as long as the store waits (here
    # 10 s: 25 ms more on the mean of 400 tokens), in every round.
    floor = 0.010
    for _ in range(8):
        unloaded, locked, during, slowest = measure(server, url)
        print(
            "inter-token mean / p99: {:.2f} / {:.2f} ms with the store answering, {:.2f} / {:.2f} ms locked".format(
                *(1000 * x for x in (*unloaded, *locked))
            )
        )
        print(f"the stream went on {during:.1f} s once locked; the admin's history waited up to {slowest:.1f} s")
        measured = during >= 0.5 and slowest >= 1.0
        if measured and locked[0] <= 2 * max(unloaded[0], floor) and locked[1] <= 2 * max(unloaded[1], floor):
            return
    pytest.fail("in eight rounds no stream beside a locked store kept within 2x of its inter-token latency")
