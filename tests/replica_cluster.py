"""Two replicas of a server sharing one weight store in PostgreSQL (launchers.services), for the
replica and fault tests, and a wait for what they converge to."""

import time

from tests.server_process import ServerProcess

LEASE_S = 3


class Cluster:
    def __init__(self, manifest, folder, store_url: str) -> None:
        self.manifest, self.folder, self.store_url = manifest, folder, store_url
        self.replicas = {name: self.start(name) for name in ("replica-a", "replica-b")}
        for replica in self.replicas.values():
            replica.wait_ready()

    def start(self, name: str) -> ServerProcess:
        data = self.folder / name
        data.mkdir(exist_ok=True)
        env = {"MPO_STORE_URL": self.store_url, "MPO_REPLICA_NAME": name, "MPO_JOB_LEASE_S": str(LEASE_S)}
        return ServerProcess(self.manifest, data, self.folder / f"{name}-{time.time():.0f}.log", env=env)

    def restart(self, name: str) -> ServerProcess:
        self.replicas[name].stop()
        self.replicas[name] = self.start(name)
        self.replicas[name].wait_ready()
        return self.replicas[name]

    @property
    def a(self) -> ServerProcess:
        return self.replicas["replica-a"]

    @property
    def b(self) -> ServerProcess:
        return self.replicas["replica-b"]

    def stop(self) -> None:
        for replica in self.replicas.values():
            replica.stop()


def wait_until(check, timeout: float, what: str):
    """The first truthy result of check(), which must have been asked for within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        assert asked < deadline, f"not within {timeout} s: {what}"
        if result := check():
            return result
        time.sleep(0.02)
