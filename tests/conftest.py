"""Shared fixtures: tiny real checkpoints, a real server over them, and the oracle."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.adapters import build_lora_mixture
from tests.checkpoints import build_test_mixture
from tests.oracle import MixtureOracle
from tests.server_process import ADMIN_TOKEN, ServerProcess, reap_stopped_servers

# Fixtures that start a server, a service, a browser or a demo build: a test that uses one
# (directly or through another fixture) is marked `server`, as is every test of a module that
# imports from the launchers (launchers, tests.server_process, tests.replica_cluster).
SERVER_FIXTURES = {
    "checkpoint_server",
    "lora_server",
    "lora_torch_deltas_server",
    "lora_compiled_server",
    "server",
    "postgres",
    "page",
    "smollm2_smoke_demo",
    "smoke_study",
}
LAUNCHERS = {"tests.server_process", "tests.replica_cluster", "launchers.processes", "launchers.services"}


def starts_a_server(item: pytest.Item) -> bool:
    uses = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    imported = {getattr(value, "__module__", None) for value in vars(item.module).values()} if item.module else set()
    return bool(uses) or bool(LAUNCHERS & imported)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if starts_a_server(item):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session", autouse=True)
def _reap_servers():
    """Servers left shutting down by their tests (tests/server_process.py) are waited for last."""
    yield
    reap_stopped_servers()


@pytest.fixture(scope="session")
def test_manifest(tmp_path_factory) -> Path:
    return build_test_mixture(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def lora_manifest(test_manifest) -> Path:
    """The same mixture with its policies as LoRA adapters on the reference (shared base)."""
    return build_lora_mixture(test_manifest.parent)


@pytest.fixture(scope="session")
def smollm2_smoke_demo(tmp_path_factory) -> Path:
    """The SmolLM2 demo built at smoke scale (a minute): its build test and the study's smoke run."""
    from demo.smollm2.build import build, smoke_config

    return build(tmp_path_factory.mktemp("smollm2") / "demo", smoke_config())


@pytest.fixture(scope="session")
def smoke_study(smollm2_smoke_demo, tmp_path_factory):
    """The README's `mpo-serve study`, at smoke scale (`--smoke`) on the SmolLM2 smoke demo:
    (its folder, its table)."""
    out = tmp_path_factory.mktemp("study") / "study-run"
    command = [str(Path(sys.executable).parent / "mpo-serve"), "study", "--smoke", "--out", str(out)]
    done = subprocess.run([*command, "--demo-folder", str(smollm2_smoke_demo.parent)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (out / "table.md").read_text().strip()
    assert table in done.stdout and "study done in" in done.stdout
    return out, table


@pytest.fixture(scope="session")
def checkpoint_server(test_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("server")
    with ServerProcess(test_manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="session")
def lora_server(lora_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("lora-server")
    with ServerProcess(lora_manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def lora_torch_deltas_server(lora_manifest, tmp_path_factory):
    """The shared base with its deltas' GEMMs in torch, the path CUDA takes (server.settings)."""
    data = tmp_path_factory.mktemp("lora-torch-deltas-server")
    with ServerProcess(lora_manifest, data, data / "server.log", env={"MPO_DELTA_MATMUL": "torch"}) as process:
        yield process


@pytest.fixture(scope="session")
def lora_compiled_server(lora_manifest, tmp_path_factory):
    """The shared base under vLLM's compilation (mixer.lora.compiled), eager being the CPU default."""
    data = tmp_path_factory.mktemp("lora-compiled-server")
    with ServerProcess(lora_manifest, data, data / "server.log", env={"MPO_ENFORCE_EAGER": "false"}) as process:
        yield process


@pytest.fixture(scope="session")
def checkpoint_oracle(test_manifest) -> MixtureOracle:
    return MixtureOracle(test_manifest)


@pytest.fixture(scope="session")
def lora_oracle(lora_manifest) -> MixtureOracle:
    return MixtureOracle(lora_manifest)


# The tests' mixture served two ways: full-checkpoint sub-models (merged mode), and LoRA
# adapters on one shared base; same mixture id and component names, each with its own oracle.
# Two more are the exactness tests' alone: the shared base with torch's GEMMs for the deltas
# (the path CUDA takes), and the shared base compiled.
SERVED = {
    "checkpoints": ("checkpoint_server", "checkpoint_oracle"),
    "lora-shared": ("lora_server", "lora_oracle"),
    "lora-torch-deltas": ("lora_torch_deltas_server", "lora_oracle"),
    "lora-compiled": ("lora_compiled_server", "lora_oracle"),
}
BOTH = ["checkpoints", "lora-shared"]


def pytest_generate_tests(metafunc):
    """A module marked `both_modes` runs every test on both servers, or on the marker's `modes`
    (module by module)."""
    marker = metafunc.definition.get_closest_marker("both_modes")
    if marker and "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", marker.kwargs.get("modes", BOTH), indirect=True, scope="module")


@pytest.fixture(scope="module")
def mode(request) -> str:
    return getattr(request, "param", "checkpoints")


@pytest.fixture(scope="module")
def server(mode, request):
    return request.getfixturevalue(SERVED[mode][0])


@pytest.fixture(scope="module")
def oracle(mode, request) -> MixtureOracle:
    return request.getfixturevalue(SERVED[mode][1])


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
    """A real PostgreSQL server for the session (launchers.services)."""
    from launchers.services import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def page():
    """A tab of headless Debian Chromium (tests.browser), started for the test alone: the sync
    Playwright API runs an event loop in this thread while it is open, which later tests'
    asyncio.run would trip on. What the page logs as an error and any dialog it opens (alert,
    confirm) are kept in page.problems, and a dialog is dismissed."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.problems = []
        tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
        tab.on("console", lambda m: m.type == "error" and tab.problems.append(f"console: {m.text}"))

        def dialog(d) -> None:
            tab.problems.append(f"dialog {d.type}: {d.message}")
            d.dismiss()

        tab.on("dialog", dialog)
        yield tab
        browser.close()
