"""A real mpo-serve server in a subprocess, for tests that go through HTTP."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ADMIN_TOKEN = "test-admin-token-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(
        self,
        manifest: Path | None,
        data_dir: Path,
        log: Path,
        admin_token: str | None = ADMIN_TOKEN,
        store: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, MPO_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        env.pop("MPO_ADMIN_TOKEN", None)
        if store is not None:
            env["MPO_STORE_PATH"] = str(store)
        if admin_token:
            env["MPO_ADMIN_TOKEN"] = admin_token
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)]
        if manifest is not None:
            command += ["--manifest", str(manifest)]
        self.log = log
        # Its own process group, so that kill() takes the engine's processes down with it.
        self.process = subprocess.Popen(
            command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the server and every process it started: no shutdown code runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
