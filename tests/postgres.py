"""A real PostgreSQL server for tests: Debian's binaries (scripts/setup.sh --dev installs
them), a cluster made by initdb in a temporary folder, run by an unprivileged user when the
tests run as root (PostgreSQL refuses to run as root)."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from server.cli.processes import free_port


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL is needed (scripts/setup.sh --dev installs Debian's postgresql package)"
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
        self.process = subprocess.Popen(
            [binaries / "postgres", "-D", data, "-p", str(self.port), "-k", self.folder]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            **user,
        )
        self._wait_ready()

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
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
