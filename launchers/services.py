"""PostgreSQL and nginx run on this machine, for the tests and the benchmarks that need a real
shared weight store or the project's real load balancer in front of local servers.

- PostgresServer: Debian's binaries (scripts/setup.sh --dev installs them), a cluster made by
  initdb in a temporary folder, run by an unprivileged user when started by root (PostgreSQL
  refuses to run as root); it can be paused and resumed like an operator's restart.
- NginxProxy: the project's nginx configuration (docker/nginx/mpo-serve.conf) used as it is,
  except that it listens on a free local port and its upstream list names the local servers.
- RayCluster: a Ray head and a worker node as two processes on this machine, each with a node
  IP of its own (127.0.0.1, 127.0.0.2), as two machines would be (the `ray` extra installs Ray).
"""

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from launchers.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docker" / "nginx" / "mpo-serve.conf"


def end(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is needed (scripts/setup.sh --dev installs Debian's postgresql package)")
    return Path(initdb).parent


class PostgresServer:
    """`postgres` on a free local port; `url()` gives a fresh database's URL."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mpo-pg-"))
        self.port = free_port()
        as_root = os.geteuid() == 0
        account = pwd.getpwnam("nobody") if as_root else None
        user = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
        if account:
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        binaries = postgres_bin()
        data = self.folder / "data"
        subprocess.run(
            [binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=self.folder,
            **user,
        )
        self.log = (self.folder / "postgres.log").open("w")
        self._command = [binaries / "postgres", "-D", data, "-p", str(self.port), "-k", self.folder]
        self._command += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        self._user = user
        self.resume()

    def resume(self) -> None:
        """Start the server (again, after pause: the same data, the same port)."""
        self.process = subprocess.Popen(
            self._command, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder, **self._user
        )
        self._wait_ready()

    def pause(self) -> None:
        """Stop the server as an operator's fast shutdown does (clients are disconnected)."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                psycopg.connect(self.admin_dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError((self.folder / "postgres.log").read_text()) from None
                time.sleep(0.2)

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self) -> str:
        """A new, empty database."""
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_dsn(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.admin_dsn(name)

    def stop(self) -> None:
        end(self.process, 30)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class NginxProxy:
    def __init__(self, upstream_ports: list[int]) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            raise RuntimeError("nginx is needed (scripts/setup.sh --dev installs Debian's nginx)")
        self.folder = Path(tempfile.mkdtemp(prefix="mpo-nginx-"))
        self.folder.chmod(0o755)  # nginx's workers run unprivileged when the tests run as root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = SITE.read_text()
        if site.count("listen 80;") != 1:
            raise RuntimeError(f"{SITE} must listen on port 80 exactly once (its port is replaced here)")
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
        end(self.process, 10)
        shutil.rmtree(self.folder, ignore_errors=True)


class RayCluster:
    """`ray start` for a head and one worker node, each offering `ranks` vLLM worker ranks
    (mixer.ray_cpu.RESOURCE) and blocking in its own process, so that stop() ends this cluster
    and no other. `address` is what a driver passes as RAY_ADDRESS."""

    def __init__(self, ranks: int = 1) -> None:
        from mixer.ray_cpu import RESOURCE

        self.folder = Path(tempfile.mkdtemp(prefix="mpo-ray-"))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.ray = Path(sys.executable).with_name("ray")
        node = ["--block", "--num-cpus=1", f"--resources={json.dumps({RESOURCE: ranks})}", "--disable-usage-stats"]
        head = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false"]
        self.nodes = [self.start("head", [*head, *node])]
        self.wait_for_nodes(1)
        self.nodes.append(self.start("worker", [f"--address={self.address}", "--node-ip-address=127.0.0.2", *node]))
        self.wait_for_nodes(2)

    def start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        return subprocess.Popen([self.ray, "start", *arguments], stdout=log, stderr=subprocess.STDOUT)

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = subprocess.run(
                [self.ray, "status", f"--address={self.address}"], capture_output=True, text=True, check=False
            )
            active = status.stdout.partition("Active:")[2].partition("Pending:")[0]
            if active.count("node_") >= count:
                return
            if time.monotonic() > deadline or any(node.poll() is not None for node in self.nodes):
                raise RuntimeError(f"Ray did not reach {count} nodes (logs in {self.folder}): {status.stdout}")
            time.sleep(1)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.terminate()
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                node.kill()
