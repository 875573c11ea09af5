"""mpo-serve in a subprocess, until it answers /health: what the tests and the benchmarks start,
and what a script that drives a server of its own would use."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from server.engine import engine_core_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """A server command in its own process group; `port` is where it listens."""

    def __init__(self, command: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
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
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def rss_bytes(self) -> int:
        """Resident memory of the server and every process it started."""
        import psutil

        me = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the server and every process it started have used so far."""
        import psutil

        me = psutil.Process(self.process.pid)
        return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])

    def kill(self) -> None:
        """SIGKILL the server and every process it started: no shutdown code runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM and wait; whatever of the group is left after that is killed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def __enter__(self) -> "HttpServer":
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MpoServer(HttpServer):
    """`mpo-serve serve` on `port` (default: a free one). `env` changes our environment (None: unset)."""

    def __init__(
        self,
        manifest: Path | None,
        data_dir: Path,
        log: Path,
        env: dict[str, str | None] | None = None,
        port: int | None = None,
    ):
        port = port or free_port()
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
        if manifest is not None:
            command += ["--manifest", str(manifest)]
        full_env = dict(os.environ, MPO_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        for key, value in (env or {}).items():
            full_env.pop(key, None)
            if value is not None:
                full_env[key] = value
        super().__init__(command, port, full_env, log)

    def engine_process(self) -> psutil.Process:
        """vLLM's EngineCore process of this server (the fault tests and benches kill or pin it)."""
        return engine_core_process(psutil.Process(self.process.pid))
