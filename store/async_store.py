"""The weight store for code on an event loop: every call runs in a thread pool of the store's
own, so a slow or absent database holds up only the callers that wait for its answer, never
the event loop (every stream the server is sending) nor the loop's default pool (rewards,
files). With PostgreSQL shared by replicas, one slow statement would otherwise stall every
token of every stream of the replica that sent it.

Four threads: the server's store calls are few and short (a poll of the active set five times
a second, heartbeats, admin requests); while the database is away they wait (up to the
connection timeout) without starving anything else.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from store import votes
from store.weight_store import WeightSet, WeightStore

T = TypeVar("T")


class AsyncWeightStore:
    def __init__(self, store: WeightStore, threads: int = 4) -> None:
        self.sync = store
        self.mixture = store.mixture
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="weight-store")

    async def _call(self, method: Callable[..., T], *args, **kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(method, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sync.close()

    async def add(self, weights: dict[str, float], **source) -> WeightSet:
        return await self._call(self.sync.add, weights, **source)

    async def activate(self, set_id: int) -> WeightSet:
        return await self._call(self.sync.activate, set_id)

    async def ensure_active(self, weights: dict[str, float], fits) -> tuple[WeightSet, bool]:
        return await self._call(self.sync.ensure_active, weights, fits)

    async def get(self, set_id: int) -> WeightSet | None:
        return await self._call(self.sync.get, set_id)

    async def active_state(self) -> tuple[int, WeightSet] | None:
        return await self._call(self.sync.active_state)

    async def history(self, after: int = 0) -> list[WeightSet]:
        return await self._call(self.sync.history, after)

    async def latest_evals(self) -> dict[int, dict]:
        return await self._call(self.sync.latest_evals)

    async def start_job(self, job_id: str, kind: str, params: dict, data_hash: str, owner: str | None = None) -> None:
        await self._call(self.sync.start_job, job_id, kind, params, data_hash, owner)

    async def finish_job(self, job_id: str, status: str, **outcome) -> None:
        await self._call(self.sync.finish_job, job_id, status, **outcome)

    async def heartbeat(self, job_id: str, progress: dict) -> bool | None:
        return await self._call(self.sync.heartbeat, job_id, progress)

    async def request_cancel(self, job_id: str, kind: str) -> bool:
        return await self._call(self.sync.request_cancel, job_id, kind)

    async def job(self, job_id: str, kind: str) -> dict | None:
        return await self._call(self.sync.job, job_id, kind)

    async def recent_jobs(self, limit: int = 50) -> list[dict]:
        return await self._call(self.sync.recent_jobs, limit)

    async def fail_jobs(self, owner: str | None = None, lease_s: float | None = None) -> list[str]:
        return await self._call(self.sync.fail_jobs, owner, lease_s)

    async def add_vote(self, vote: dict) -> int:
        return await self._call(votes.add_vote, self.sync, vote)

    async def votes(self, objective: str | None = None) -> list[dict]:
        return await self._call(votes.list_votes, self.sync, objective)
