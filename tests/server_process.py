"""A real mpo-serve server in a subprocess, for tests that go through HTTP, and the admin
client and greedy probe the restart and replica tests use on it."""

import os
from pathlib import Path

import httpx
import pytest

from server.cli.processes import MpoServer
from tests.completions import completion_body

ADMIN_TOKEN = "test-admin-token-0123"

# Tests that need the server held under load while the test process acts: run by hand
# (MPO_LOAD_TESTS=1). On the 2-core CI VM, while vLLM decodes, a process asleep on a timer may
# wake tens of seconds late, after the load (or a drained server) is gone: each failed once in
# the full suite and passes alone (tests/server/test_admission.py says more). The likely cause:
# vLLM's EngineCore busy-spins on the core the worker leaves free (bench/engine_affinity.py).
BY_HAND_UNDER_LOAD = pytest.mark.skipif(
    not os.environ.get("MPO_LOAD_TESTS"), reason="by hand: MPO_LOAD_TESTS=1 (flaky on the CI VM)"
)


# The engine on one core, the other left to the server's front end and the test's clients (as
# vLLM's own default reserves one): an engine decoding on both cores delays the front end by
# whatever the scheduler does, which a latency test would measure instead of the server.
ONE_CORE = {"VLLM_CPU_OMP_THREADS_BIND": "0"}

# Servers a test has finished with, still shutting down (reaped by conftest at the session's end).
STOPPING: list["ServerProcess"] = []


class ServerProcess(MpoServer):
    """mpo-serve with the tests' admin token (None: admin disabled) and optional weight store.

    Leaving its `with` block sends SIGTERM and goes on: vLLM takes ~5 s to shut its engine
    down, mostly waiting, which the next test need not wait for (about two minutes over the
    suite's ~25 servers). `stop()` still waits, for tests that reuse a server's store or port."""

    def __init__(
        self,
        manifest: Path | None,
        data_dir: Path,
        log: Path,
        admin_token: str | None = ADMIN_TOKEN,
        store: Path | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:
        env = {"MPO_ADMIN_TOKEN": admin_token or None, "MPO_STORE_PATH": str(store) if store else None, **(env or {})}
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
