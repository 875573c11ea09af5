"""The project's nginx configuration (docker/nginx/mpo-serve.conf), run for real by Debian's
nginx in front of local servers: the file is used as it is, except that it listens on a free
local port instead of port 80 and its upstream list names the local servers."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from server.cli.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docker" / "nginx" / "mpo-serve.conf"


class NginxProxy:
    def __init__(self, upstream_ports: list[int]) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), "nginx is needed (scripts/setup.sh --dev installs Debian's nginx)"
        self.folder = Path(tempfile.mkdtemp(prefix="mpo-nginx-"))
        self.folder.chmod(0o755)  # nginx's workers run unprivileged when the tests run as root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = SITE.read_text()
        assert site.count("listen 80;") == 1
        (self.folder / "mpo-serve.conf").write_text(site.replace("listen 80;", f"listen 127.0.0.1:{self.port};"))
        (self.folder / "mpo-serve-upstreams.conf").write_text(
            "".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;\n" for port in upstream_ports)
        )
        temp = "\n".join(
            f"    {kind}_temp_path {self.folder}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.folder / "nginx.conf").write_text(
            f"""worker_processes 1;
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {self.folder}/access.log;
{temp}
    include {self.folder}/mpo-serve.conf;
}}
"""
        )
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "stderr.log").open("w"),
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/nginx-health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError((self.folder / "stderr.log").read_text() + self.error_log())
            time.sleep(0.2)

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
