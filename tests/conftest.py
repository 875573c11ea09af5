"""Shared fixtures: tiny real checkpoints, a real server over them, and the oracle."""

from pathlib import Path

import httpx
import pytest

from tests.checkpoints import build_test_mixture
from tests.oracle import MixtureOracle
from tests.server_process import ADMIN_TOKEN, ServerProcess


@pytest.fixture(scope="session")
def test_manifest(tmp_path_factory) -> Path:
    return build_test_mixture(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def server(test_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("server")
    with ServerProcess(test_manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="session")
def oracle(test_manifest) -> MixtureOracle:
    return MixtureOracle(test_manifest)


@pytest.fixture
def admin(server):
    """An HTTP client with the admin token; restores the default weights afterwards."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120) as client:
        yield client
        client.put("/admin/weights", json={"weights": {"alpha": 0.5, "beta": 0.5}}).raise_for_status()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (tests.postgres)."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()
