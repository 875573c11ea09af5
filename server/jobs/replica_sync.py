"""Keeping one replica in step with the others through the shared weight store.

The store is polled, not subscribed to: every `poll_s` the replica reads the active set's
version counter and applies the set when the counter moved; every `heartbeat_s` it renews the
lease of the job it runs (publishing its progress, picking up cancel requests) and fails jobs
whose replica stopped renewing theirs. Polling was chosen over PostgreSQL's LISTEN/NOTIFY
because it is one code path for SQLite and PostgreSQL, needs no dedicated connection, and
cannot miss a change while a connection is being re-established (a missed notification would
leave a replica on old weights until the next change); a read of one indexed row five times a
second is nothing to the database.
"""

import asyncio
import logging
import time

from server.jobs.lifecycle import JobRunner
from server.jobs.live_weights import LiveWeights
from store.async_store import AsyncWeightStore

logger = logging.getLogger(__name__)


class ReplicaSync:
    def __init__(
        self,
        weights: LiveWeights,
        store: AsyncWeightStore,
        runners: list[JobRunner],
        lease_s: float,
        poll_s: float = 0.2,
        heartbeat_s: float = 1.0,
        reread_s: float = 30.0,
    ) -> None:
        self.weights = weights
        self.store = store
        self.runners = runners
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.heartbeat_s = min(heartbeat_s, lease_s / 3)  # several heartbeats per lease
        self.reread_s = reread_s  # every known weight set read again (server.jobs.weight_sets)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        last_heartbeat = last_reread = time.monotonic()
        failing = False
        while True:
            try:
                await self.weights.follow_active()
                full = time.monotonic() - last_reread >= self.reread_s
                await self.weights.sets.refresh(full)
                last_reread = time.monotonic() if full else last_reread
                if time.monotonic() - last_heartbeat >= self.heartbeat_s:
                    last_heartbeat = time.monotonic()
                    for runner in self.runners:
                        await runner.heartbeat()
                    for job in await self.store.fail_jobs(lease_s=self.lease_s):
                        logger.warning("job %s: no heartbeat from its replica for %.0f s; failed", job, self.lease_s)
                if failing:
                    logger.info("the weight store answers again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the store may be away for a while; keep serving, keep trying
                if not failing:
                    logger.exception("cannot reach the weight store; serving with the weights applied last")
                failing = True
            await asyncio.sleep(self.poll_s)
