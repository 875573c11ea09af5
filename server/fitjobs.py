"""MPO fit jobs, run inside the server: gather scores through the engine, solve by mirror
descent (in a thread), store the result as a weight set, and activate it if asked.

One job at a time (a second gets 409). Progress lives in memory while the job runs; the
job's start and its outcome are written to the weight store, so a job cut off by a stop of
the server is reported failed after a restart, and the weights it would have produced were
never stored or applied.
"""

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from server.admin import AdminService
from server.errors import APIError
from server.fit_protocol import FitBatch
from weights.plot import trajectory_png
from weights.solver import FitResult, Iterate, fit_scores, normalised_rewards

logger = logging.getLogger(__name__)
MAX_STORED_POINTS = 500  # trajectory points kept with a finished job (for its plot)


class Cancelled(Exception):
    pass


@dataclass
class FitJob:
    id: str
    batch: FitBatch
    data_hash: str  # of the batch's items, computed once
    phase: str = "queued"  # queued, sampling | scoring, fitting, storing, succeeded, failed, cancelled
    samples_done: int = 0
    samples_total: int = 0
    iteration: int = 0
    latest: Iterate | None = None
    trajectory: list[Iterate] = field(default_factory=list)
    result: FitResult | None = None
    result_set: int | None = None
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


def thinned(trajectory: list[Iterate], points: int = MAX_STORED_POINTS) -> list[dict]:
    stride = max(1, len(trajectory) // points)
    kept = trajectory[::stride]
    if trajectory and kept[-1] is not trajectory[-1]:
        kept.append(trajectory[-1])
    return [vars(it) for it in kept]


class FitJobs:
    def __init__(self, admin: AdminService, concurrency: int) -> None:
        self.admin = admin
        self.store = admin.store
        self.concurrency = concurrency  # the engine's batch size (max_num_seqs)
        self.jobs: dict[str, FitJob] = {}
        self.running: FitJob | None = None

    @property
    def policies(self) -> list[str]:
        return self.admin.client.mixture.manifest.policy_names

    def start(self, batch: FitBatch) -> FitJob:
        if self.running is not None:
            raise APIError(409, f"fit job {self.running.id} is still running; cancel it or wait", code="fit_running")
        if batch.mode == "rewards":
            unknown = {k for item in batch.items for r in item.rewards or [] for k in r} - set(self.policies)
            missing = [p for p in self.policies if any(p not in r for i in batch.items for r in i.rewards or [])]
            if unknown or missing:
                raise APIError(
                    400,
                    f"rewards must name exactly the policies {self.policies}; "
                    f"unknown {sorted(unknown)}, missing {missing}",
                    param="items",
                )
        job = FitJob(uuid.uuid4().hex[:16], batch, batch.data_hash())
        self.store.start_job(job.id, batch.options.model_dump() | {"mode": batch.mode}, job.data_hash)
        self.jobs[job.id] = self.running = job
        job.task = asyncio.create_task(self._run(job))
        return job

    async def _run(self, job: FitJob) -> None:
        options = job.batch.options
        try:
            scores = await self._scores(job)
            job.enter("fitting")
            job.result = await asyncio.to_thread(
                fit_scores,
                scores,
                options.iterations,
                options.step,
                options.batch_size,
                options.seed,
                lambda it: self._on_iterate(job, it),
            )
            job.enter("storing")
            weights = dict(zip(self.policies, job.result.weights, strict=True))
            # The weight set and the job's success are one transaction: a crash leaves both or neither.
            source = {
                "source": "fit",
                "job_id": job.id,
                "params": options.model_dump() | {"mode": job.batch.mode},
                "data_hash": job.data_hash,
                "job_result": self._summary(job),
            }
            if options.activate:
                stored = await self.admin.apply_and_store(weights, **source)
            else:
                stored = await asyncio.to_thread(self.store.add, weights, **source)
            job.result_set = stored.id
            job.enter("succeeded")
        except (Cancelled, asyncio.CancelledError):
            job.enter("cancelled")
            self.store.finish_job(job.id, "cancelled", result=self._summary(job))
        except Exception as err:  # noqa: BLE001 - any failure ends the job, reported with its reason
            logger.exception("fit job %s failed", job.id)
            job.enter("failed")
            job.error = f"{type(err).__name__}: {err}"
            self.store.finish_job(job.id, "failed", error=job.error, result=self._summary(job))
        finally:
            self.running = None

    def _on_iterate(self, job: FitJob, iterate: Iterate) -> None:
        if job.cancel.is_set():
            raise Cancelled()
        job.iteration, job.latest = iterate.t, iterate
        job.trajectory.append(iterate)

    async def _scores(self, job: FitJob) -> np.ndarray:
        """(prompts, responses, objectives) implicit rewards, or normalised explicit rewards."""
        batch, options = job.batch, job.batch.options
        if batch.mode == "rewards":
            rewards = np.array([[[r[p] for p in self.policies] for r in item.rewards or []] for item in batch.items])
            return normalised_rewards(rewards, options.beta or 1.0)
        client, scorer = self.admin.client, self.admin.scorer
        prompts = [item.prompt_ids(client) for item in batch.items]
        # Responses in flight: several engine batches deep, so the batch stays full while
        # groups finish at different times; bounded, so a huge job neither floods the engine's
        # queue nor keeps running long after a cancel.
        per_prompt = options.samples_per_prompt if batch.mode == "sample" else len(batch.items[0].responses or [1])
        limit = asyncio.Semaphore(max(1, 4 * self.concurrency // per_prompt))

        async def bounded(make):
            async with limit:
                if job.cancel.is_set():
                    raise Cancelled()
                result = await make()
                job.samples_done += len(result)
                return result

        if batch.mode == "sample":
            job.enter("sampling")
            m = options.samples_per_prompt
            job.samples_total = len(prompts) * m
            groups = await asyncio.gather(
                *(
                    bounded(partial(scorer.sample, ids, m, options.max_tokens, options.seed + n * m))
                    for n, ids in enumerate(prompts)
                )
            )
        else:
            job.enter("scoring")
            job.samples_total = sum(len(item.responses or []) for item in batch.items)
            groups = await asyncio.gather(
                *(
                    bounded(partial(self._score_all, ids, item.responses or []))
                    for ids, item in zip(prompts, batch.items, strict=True)
                )
            )
        rows = [[scored.implicit_rewards() for scored in group] for group in groups]
        return np.array(rows, dtype=np.float64)

    async def _score_all(self, prompt_ids: list[int], responses: list[str | list[int]]) -> list:
        scorer = self.admin.scorer
        return await asyncio.gather(*(scorer.score(prompt_ids, self.admin.response_ids(r)) for r in responses))

    def _summary(self, job: FitJob) -> dict:
        """What is stored with a finished job: its outcome and the (thinned) trajectory."""
        return {
            "policies": self.policies,
            **self._outcome(job),
            "samples": job.samples_done,
            "trajectory": thinned(job.trajectory),
        }

    def _outcome(self, job: FitJob) -> dict:
        result = job.result
        return {
            "weights": dict(zip(self.policies, result.weights, strict=True)) if result else None,
            "objective": result.objective if result else None,
            "expected_scores": dict(zip(self.policies, result.expected, strict=True)) if result else None,
            "start": None
            if result is None
            else {
                "objective": result.start_objective,
                "expected_scores": dict(zip(self.policies, result.start_expected, strict=True)),
            },
        }

    def cancel(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None or job.task is None or job.task.done():
            raise APIError(409 if job else 404, f"fit job {job_id} is not running", param="id")
        job.cancel.set()
        job.task.cancel()
        return self.status(job_id)

    def status(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:  # finished before this server started: from the store
            stored = self.store.job(job_id)
            if stored is None:
                raise APIError(404, f"fit job {job_id} does not exist", param="id")
            result = stored["result"] or {}
            return {
                "id": job_id,
                "phase": stored["status"],
                "error": stored["error"],
                "result_weight_set": stored["result_set"],
                "params": stored["params"],
                **{k: result.get(k) for k in ("weights", "objective", "expected_scores", "start")},
            }
        latest = job.latest
        return {
            "id": job.id,
            "phase": job.phase,
            "mode": job.batch.mode,
            "error": job.error,
            "progress": {
                "samples_done": job.samples_done,
                "samples_total": job.samples_total,
                "iteration": job.iteration,
                "iterations": job.batch.options.iterations,
            },
            "current": None
            if latest is None
            else {
                "weights": dict(zip(self.policies, latest.weights, strict=True)),
                "objective": latest.objective,
                "expected_scores": dict(zip(self.policies, latest.expected, strict=True)),
            },
            **self._outcome(job),
            "result_weight_set": job.result_set,
            "params": job.batch.options.model_dump(),
            "elapsed_s": time.time() - job.started,
            "timings_s": dict(job.timings),
        }

    def plot(self, job_id: str) -> bytes:
        job = self.jobs.get(job_id)
        if job is not None:
            points = thinned(job.trajectory)
        else:
            stored = self.store.job(job_id)
            if stored is None:
                raise APIError(404, f"fit job {job_id} does not exist", param="id")
            points = (stored["result"] or {}).get("trajectory") or []
        if not points:
            raise APIError(409, f"fit job {job_id} has no iterations yet", param="id")
        return trajectory_png(points, self.policies, f"MPO fit {job_id}")
