"""The job lifecycle's commit point, on a real SQLite store: a job that has stored its outcome
and not yet returned is not failed by a heartbeat that finds its row no longer running, nor cut
off by a cancel or a shutdown. (A CI run failed a 0.5 s fit this way: "its lease ran out", with
its weight set stored.)"""

import asyncio

import pytest

from server.exceptions import Conflict
from server.jobs.lifecycle import Job, JobRunner
from store.async_store import AsyncWeightStore
from store.weight_store import WeightStore


class StoresThenWaits(JobRunner[Job]):
    """A job that stores its success, then waits to be let go before its task returns: the
    moment a heartbeat, a cancel or a shutdown may come in."""

    kind = "fit"

    def __init__(self, store: AsyncWeightStore) -> None:
        super().__init__(store, replica="r1")
        self.stored_success = asyncio.Event()
        self.let_go = asyncio.Event()

    async def execute(self, job: Job) -> None:
        job.enter("storing")
        await self.store.finish_job(job.id, "succeeded", result={})
        self.stored_success.set()
        await self.let_go.wait()

    def summary(self, job: Job) -> dict:
        return {}

    def live_status(self, job: Job) -> dict:
        return job.lifecycle()

    def stored_status(self, stored: dict) -> dict:
        return self.stored_lifecycle(stored)


@pytest.mark.parametrize("interruption", ["heartbeat", "cancel", "shutdown"])
def test_a_job_that_stored_its_outcome_ends_succeeded(tmp_path, interruption):
    async def scenario() -> tuple[Job, dict]:
        store = AsyncWeightStore(WeightStore(tmp_path / "weights.sqlite", "mix"))
        runner = StoresThenWaits(store)
        job = await runner.launch(Job(id="job1", data_hash="h"), params={})
        await runner.stored_success.wait()
        if interruption == "heartbeat":
            await runner.heartbeat()  # the row is no longer running: it succeeded
        elif interruption == "cancel":
            with pytest.raises(Conflict, match="storing its result"):
                await runner.cancel(job.id)
        else:
            asyncio.get_running_loop().call_later(0.1, runner.let_go.set)
            await runner.shutdown("shutdown")
        runner.let_go.set()
        await job.task
        stored = await store.job(job.id, "fit")
        store.close()
        return job, stored

    job, stored = asyncio.run(scenario())
    assert (job.phase, job.error) == ("succeeded", None)
    assert stored["status"] == "succeeded"
