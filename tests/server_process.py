"""A real mpo-serve server in a subprocess, for tests that go through HTTP, and the admin
client and greedy probe the restart and replica tests use on it."""

import os
from pathlib import Path

import httpx

from launchers.processes import MpoServer
from tests.completions import completion_body

ADMIN_TOKEN = "test-admin-token-0123"
FAST_LANE = "MPO_TESTS_FAST"  # set by `scripts/check --fast`, which runs the tests not marked `server`

# Every test server's engine runs on core 0; the server pins vLLM's EngineCore beside it
# (server.engine.pin_engine_core), so core 1 is left to the server's front end, the tests'
# clients, PostgreSQL, nginx and the browser. For the tiny test model this is faster in every
# measure than the server's default of both cores (bench.engine_affinity; docs/benchmarks.md,
# "Where vLLM's worker and EngineCore run"): its steps are short, so the engine's
# fixed work in EngineCore and the front end is what counts, and with both cores bound the
# spinning EngineCore and the OpenMP threads starve everything else (processes asleep on a
# timer woke tens of seconds late). Tests that set VLLM_CPU_OMP_THREADS_BIND themselves win.
ENGINE_ON_CORE_0 = {"VLLM_CPU_OMP_THREADS_BIND": "0"}

# Servers a test has finished with, still shutting down (reaped by conftest at the session's end).
STOPPING: list["ServerProcess"] = []


class ServerProcess(MpoServer):
    """mpo-serve with the tests' admin token (None: admin disabled) and optional weight store.

    Leaving its `with` block sends SIGTERM and goes on: vLLM takes seconds to shut its engine
    down, mostly waiting, which the next test need not wait for. `stop()` still waits, for
    tests that reuse a server's store or port."""

    def __init__(
        self,
        manifest: Path | None,
        data_dir: Path,
        log: Path,
        admin_token: str | None = ADMIN_TOKEN,
        store: Path | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:
        if os.environ.get(FAST_LANE):
            raise RuntimeError(f"{FAST_LANE} is set, yet a test started a server: mark it `server` (tests/conftest.py)")
        env = {
            **ENGINE_ON_CORE_0,
            "MPO_ADMIN_TOKEN": admin_token or None,
            "MPO_STORE_PATH": str(store) if store else None,
            **(env or {}),
        }
        super().__init__(manifest, data_dir, log, env)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        STOPPING.append(self)


def reap_stopped_servers() -> None:
    """Wait for every server left shutting down (each killed after 30 s)."""
    while STOPPING:
        STOPPING.pop().stop()


def admin_client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)


def greedy(client: httpx.Client, weights: dict | None) -> dict:
    """Greedy tokens and their log-probs: they tell which weights the engine ran."""
    extra = {"mixture": {"weights": weights}} if weights else {}
    body = completion_body([1, 60, 70, 80], max_tokens=12, **extra)
    return client.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
