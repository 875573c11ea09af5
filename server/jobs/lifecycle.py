"""The lifecycle every admin job shares (fits and evals): one running job per kind and
mixture across all replicas (a second is a Conflict), phases with the seconds spent in each,
cancellation, and persistence.

A job's start and its outcome are written to the weight store, and so is its progress, with
each heartbeat (server.jobs.replica_sync), so any replica can show it or ask for its cancellation. A job
cut off by a stop of its replica is marked failed when its lease runs out (or when the replica
starts again), and whatever it would have stored was never stored. A subclass says what a job
does (`execute`, which stores its own success in one transaction) and what its status shows.
"""

import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from server.exceptions import Conflict, NotFound, ShuttingDown
from store.async_store import AsyncWeightStore
from store.weight_store import JobConflict, JobLost, StoreUnavailable

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


ENDED = ("succeeded", "failed", "cancelled")  # (client.jobs, the HTTP client, has the same: a test checks)


@dataclass
class Job:
    id: str
    data_hash: str  # of the job's input, computed once
    phase: str = "queued"
    error: str | None = None
    started: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent in each phase
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task | None = None
    _since: float = field(default_factory=time.time)

    def enter(self, phase: str) -> None:
        now = time.time()
        if self.phase != "queued":
            self.timings[self.phase] = self.timings.get(self.phase, 0.0) + now - self._since
        self.phase, self._since = phase, now

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    @property
    def committing(self) -> bool:
        """In its last phase, the one transaction that stores its outcome: cancelling it now
        would end the task while that write goes on in its thread, so nothing does."""
        return self.phase == "storing"

    def check_cancelled(self) -> None:
        """Raise Cancelled if the job was asked to stop (for work running in threads)."""
        if self.cancel.is_set():
            raise Cancelled()

    def lifecycle(self) -> dict:
        """The fields every job's status shows."""
        return {
            "id": self.id,
            "phase": self.phase,
            "error": self.error,
            "elapsed_s": time.time() - self.started,
            "timings_s": dict(self.timings),
        }


J = TypeVar("J", bound=Job)


class JobRunner(ABC, Generic[J]):
    kind: ClassVar[str]  # 'fit' or 'eval': the store's job kind and the word in messages

    def __init__(self, store: AsyncWeightStore, replica: str) -> None:
        self.store = store
        self.replica = replica  # this server's name in the store: the owner of its jobs
        self.jobs: dict[str, J] = {}
        self.running: J | None = None
        self.closed: str | None = None  # why no job may start any more (shutdown)

    async def launch(self, job: J, params: dict) -> J:
        if self.closed is not None:
            raise ShuttingDown(f"no {self.kind} job can start: this server is stopping; retry", retry_after_s=1.0)
        try:
            await self.store.start_job(job.id, self.kind, params, job.data_hash, owner=self.replica)
        except JobConflict as running:
            where = "" if running.owner in (None, self.replica) else f" on replica {running.owner}"
            raise Conflict(
                f"{self.kind} job {running.job_id} is still running{where}; cancel it or wait",
                code=f"{self.kind}_running",
            ) from None
        self.jobs[job.id] = self.running = job
        job.task = asyncio.create_task(self._run(job))
        return job

    async def _run(self, job: J) -> None:
        try:
            await self.execute(job)
            job.enter("succeeded")
        except (Cancelled, asyncio.CancelledError):
            # Stopped from outside: cancelled by a user, or failed (job.error says why: a
            # shutdown, a lease that ran out). Its end is in the store before it shows here, so
            # no replica shows it running after this one has shown it ended.
            status = "failed" if job.error else "cancelled"
            job.cancel.set()  # (stopping: nothing cancels the record of its end)
            await self._record_end(job, status)
            job.enter(status)
        except Exception as err:  # noqa: BLE001 - any failure ends the job, reported with its reason
            logger.exception("%s job %s failed", self.kind, job.id)
            job.error = job.error or f"{type(err).__name__}: {err}"
            job.cancel.set()
            await self._record_end(job, "failed")
            job.enter("failed")
        finally:
            self.running = None

    async def _record_end(self, job: J, status: str) -> None:
        try:
            await self.store.finish_job(job.id, status, error=job.error, result=self.summary(job))
        except JobLost:
            logger.warning("%s job %s had already been marked failed (its lease ran out)", self.kind, job.id)
        except StoreUnavailable:  # its lease runs out, and whichever replica sees that fails it
            logger.warning("%s job %s ended %s, which the store could not record", self.kind, job.id, status)

    async def heartbeat(self) -> None:
        """Renew the running job's lease and publish its status; act on a cancel requested
        through another replica; stop a job whose lease ran out (it can store nothing now)."""
        job = self.running
        if job is None or job.task is None or job.task.done():
            return
        cancel = await self.store.heartbeat(job.id, self.live_status(job))
        if job.committing:
            # Its own transaction decides now: it stores the outcome (and the heartbeat found the
            # row no longer running because it already has), or it finds the lease gone (JobLost).
            return
        if job.cancel.is_set():  # already stopping (recording its end, which is not to be cut off)
            return
        if cancel is None:
            job.error = "its lease ran out (no heartbeat reached the store in time); nothing was stored"
        if cancel is None or cancel:
            job.cancel.set()
            job.task.cancel()

    @abstractmethod
    async def execute(self, job: J) -> None:
        """Do the job and store its success (the outcome and whatever it produced, together)."""

    @abstractmethod
    def summary(self, job: J) -> dict:
        """What is stored with a cancelled or failed job."""

    @abstractmethod
    def live_status(self, job: J) -> dict:
        """The status of a job this server runs or ran."""

    @abstractmethod
    def stored_status(self, stored: dict) -> dict:
        """The status of a job that ended before this server started (a row of the store)."""

    @staticmethod
    def stored_lifecycle(stored: dict) -> dict:
        """The fields every stored job's status shows."""
        return {"id": stored["id"], "phase": stored["status"], "error": stored["error"], "params": stored["params"]}

    async def stored(self, job_id: str) -> dict:
        stored = await self.store.job(job_id, self.kind)
        if stored is None:
            raise NotFound(f"{self.kind} job {job_id} does not exist", param="id")
        return stored

    async def status(self, job_id: str) -> dict:
        """Live status of this replica's job; a job running on another replica shows the status
        its replica published with its last heartbeat; an ended job shows what was stored."""
        job = self.jobs.get(job_id)
        if job is not None:
            return self.live_status(job) | {"replica": self.replica}
        stored = await self.stored(job_id)
        if stored["status"] == "running" and stored["progress"]:
            return stored["progress"] | {"replica": stored["owner"], "cancel_requested": stored["cancel_requested"]}
        return self.stored_status(stored) | {"replica": stored["owner"]}

    async def cancel(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is not None and job.ended:
            # (it may still be recording its end in the store: that write is not to be cancelled)
            raise Conflict(f"{self.kind} job {job_id} is not running", param="id")
        if job is not None and job.committing:
            raise Conflict(f"{self.kind} job {job_id} is storing its result; it can no longer be cancelled", param="id")
        if job is not None and job.task is not None and not job.task.done():
            if not job.cancel.is_set():  # (a second request must not cut off the record of its end)
                job.cancel.set()
                job.task.cancel()
        elif not await self.store.request_cancel(job_id, self.kind):  # on another replica: its heartbeat acts
            await self.stored(job_id)  # NotFound if it never existed
            raise Conflict(f"{self.kind} job {job_id} is not running", param="id")
        return await self.status(job_id)

    async def shutdown(self, reason: str) -> None:
        """Start no job any more; end the running one as failed with `reason` (recorded in the
        store; what it would have stored is not) and wait until it has ended."""
        self.closed = self.closed or reason
        job = self.running
        if job is None or job.task is None or job.task.done():
            return
        if not job.committing and not job.cancel.is_set():  # (a job storing its result, or its end, is let finish)
            job.error = reason
            job.cancel.set()  # its threads check the flag
            job.task.cancel()
        await asyncio.gather(job.task, return_exceptions=True)
