"""A real mpo-serve server in a subprocess, for tests that go through HTTP."""

from pathlib import Path

from bench.servers import MpoServer

ADMIN_TOKEN = "test-admin-token-0123"


class ServerProcess(MpoServer):
    """mpo-serve with the tests' admin token (None: admin disabled) and optional weight store."""

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
