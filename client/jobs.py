"""The admin API's jobs (fits and evals) from Python: start one, follow it to its end with its
progress, cancel it. The `mpo-serve fit` and `eval` commands, the study, the benchmarks and
the tests all follow jobs through this, so the phases a job ends in, the polling and the
reading of the server's error envelope are written once.

It speaks HTTP only (an `httpx.Client` the caller opens, with the admin token in its headers),
so a script on another machine uses it as it is."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# The phases a job ends in: the server's `server.jobs.lifecycle.ENDED`, as its status routes
# report them (tests/test_job_client.py checks that the two agree).
ENDED = ("succeeded", "failed", "cancelled")

Status = dict
KINDS = ("fit", "eval")


class AdminError(RuntimeError):
    """A refusal in the server's error envelope (or a body that is not one), with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"error {status}: {message}")
        self.status = status
        self.message = message


class JobFailed(RuntimeError):
    """A job that ended failed or cancelled; its last status is `status`."""

    def __init__(self, kind: str, status: Status) -> None:
        detail = f": {status['error']}" if status.get("error") else ""
        super().__init__(f"{kind} job {status['id']} {status['phase']}{detail}")
        self.kind = kind
        self.status = status


def checked(response: httpx.Response) -> dict:
    """The JSON body of a success, or AdminError with the server's message."""
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise AdminError(response.status_code, message)
    return response.json()


@dataclass
class JobClient:
    """One kind of job ("fit" or "eval") on one server."""

    http: httpx.Client
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def route(self) -> str:
        return f"/admin/{self.kind}"

    def start(self, body: dict) -> Status:
        """Start a job from a JSON body ({items, options}); its first status."""
        return checked(self.http.post(self.route, json=body))

    def start_jsonl(self, name: str, text: str, options: dict) -> Status:
        """Start a job from a JSONL batch (one item a line), uploaded as it is."""
        files = {"file": (name, text.encode(), "application/x-ndjson")}
        return checked(self.http.post(self.route, files=files, data={"options": json.dumps(options)}))

    def status(self, job_id: str) -> Status:
        return checked(self.http.get(f"{self.route}/{job_id}"))

    def cancel(self, job_id: str) -> Status:
        return checked(self.http.delete(f"{self.route}/{job_id}"))

    def follow(
        self,
        job: Status | str,
        show: Callable[[Status], None] = lambda _: None,
        until: Callable[[Status], bool] = lambda status: status["phase"] in ENDED,
        interval: float = 0.5,
        timeout: float | None = None,
        retry: tuple[type[Exception], ...] = (),
    ) -> Status:
        """Poll the job until `until(status)` (by default: until it ends), calling `show` with
        each status; the last status. A status request that raises one of `retry` (a replica
        restarting, say) is asked again. Ctrl-C cancels the job on the server, then goes on up.
        TimeoutError after `timeout` seconds."""
        status = self.status(job) if isinstance(job, str) else job
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not until(status):
                show(status)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{self.kind} job {status['id']} still {status['phase']} after {timeout} s")
                time.sleep(interval)
                try:
                    status = self.status(status["id"])
                except retry:
                    continue
        except KeyboardInterrupt:
            self.http.delete(f"{self.route}/{status['id']}")
            raise
        show(status)
        return status

    def run(self, body: dict, **follow) -> Status:
        """Start a job, follow it to its end, and return its status if it succeeded (JobFailed
        if not)."""
        return self.succeeded(self.follow(self.start(body), **follow))

    def succeeded(self, status: Status) -> Status:
        """The status of a job that succeeded; JobFailed for one that failed or was cancelled."""
        if status["phase"] != "succeeded":
            raise JobFailed(self.kind, status)
        return status
