"""MPO fit jobs, run inside the server: gather scores through the engine (implicit rewards,
or explicit rewards from scorers), solve by mirror descent (in a thread), store the result as
a weight set, and activate it if asked. The lifecycle (one at a time, phases, cancel,
persistence) is server.jobs.lifecycle'; a fit's weights are stored with its success in one transaction.
"""

import asyncio
import uuid
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from scorers import ScorerError, get_scorer
from server.exceptions import Conflict, InvalidRequest
from server.jobs.component_logprobs import ComponentLogprobs
from server.jobs.fit_batch import FitBatch
from server.jobs.lifecycle import Job, JobRunner
from server.jobs.live_weights import LiveWeights
from server.serving.engine_client import EngineClient
from store.async_store import AsyncWeightStore
from weights.plot import trajectory_png
from weights.solver import FitResult, Iterate, fit_scores, normalised_rewards, standardised

MAX_STORED_POINTS = 500  # trajectory points kept with a finished job (for its plot)


@dataclass
class FitJob(Job):
    batch: FitBatch | None = None
    # phases: queued, sampling | scoring, fitting, storing, succeeded, failed, cancelled
    samples_done: int = 0
    samples_total: int = 0
    iteration: int = 0
    latest: Iterate | None = None
    trajectory: list[Iterate] = field(default_factory=list)
    result: FitResult | None = None
    result_set: int | None = None


def thinned(trajectory: list[Iterate], points: int = MAX_STORED_POINTS) -> list[dict]:
    stride = max(1, len(trajectory) // points)
    kept = trajectory[::stride]
    if trajectory and kept[-1] is not trajectory[-1]:
        kept.append(trajectory[-1])
    return [vars(it) for it in kept]


class FitJobs(JobRunner[FitJob]):
    kind = "fit"

    def __init__(
        self,
        client: EngineClient,
        logprobs: ComponentLogprobs,
        weights: LiveWeights,
        store: AsyncWeightStore,
        replica: str,
        concurrency: int,
    ) -> None:
        super().__init__(store, replica)
        self.client = client
        self.logprobs = logprobs
        self.weights = weights
        self.concurrency = concurrency  # the engine's batch size (max_num_seqs)

    @property
    def policies(self) -> list[str]:
        return self.client.mixture.manifest.policy_names

    async def start(self, batch: FitBatch) -> FitJob:
        if batch.mode == "rewards":
            unknown = {k for item in batch.items for r in item.rewards or [] for k in r} - set(self.policies)
            missing = [p for p in self.policies if any(p not in r for i in batch.items for r in i.rewards or [])]
            if unknown or missing:
                raise InvalidRequest(
                    f"rewards must name exactly the policies {self.policies}; "
                    f"unknown {sorted(unknown)}, missing {missing}",
                    param="items",
                )
        if batch.options.scorers is not None:
            self._check_scorers(batch.options.scorers)
        if batch.options.normalise == "standard" and (batch.mode == "rewards" or batch.options.scorers is not None):
            raise InvalidRequest(
                "options.normalise 'standard' standardises implicit rewards; explicit rewards (given or from "
                "scorers) are normalised by beta instead",
                param="options.normalise",
            )
        job = FitJob(uuid.uuid4().hex[:16], batch.data_hash(), batch=batch)
        return await self.launch(job, batch.options.model_dump() | {"mode": batch.mode})

    def _check_scorers(self, scorers: dict[str, str]) -> None:
        if sorted(scorers) != sorted(self.policies):
            raise InvalidRequest(
                f"options.scorers must name exactly the policies {self.policies}; got {sorted(scorers)}",
                param="options.scorers",
            )
        for policy, spec in scorers.items():
            try:
                get_scorer(spec)
            except ScorerError as err:
                raise InvalidRequest(f"options.scorers.{policy}: {err}", param=f"options.scorers.{policy}") from None

    async def execute(self, job: FitJob) -> None:
        assert job.batch is not None
        options = job.batch.options
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
            "job_result": self.summary(job),
        }
        if options.activate:
            stored = await self.weights.apply_and_store(weights, **source)
        else:
            stored = await self.store.add(weights, **source)
            self.weights.sets.add(stored)
        job.result_set = stored.id

    def _on_iterate(self, job: FitJob, iterate: Iterate) -> None:
        job.check_cancelled()
        job.iteration, job.latest = iterate.t, iterate
        job.trajectory.append(iterate)

    async def _scores(self, job: FitJob) -> np.ndarray:
        """(prompts, responses, objectives) implicit rewards, or normalised explicit rewards
        (given with the batch, or the scorers' rewards of responses sampled from the reference)."""
        batch, options = job.batch, job.batch.options
        if batch.mode == "rewards":
            rewards = np.array([[[r[p] for p in self.policies] for r in item.rewards or []] for item in batch.items])
            return normalised_rewards(rewards, options.beta or 1.0)
        client, logprobs = self.client, self.logprobs
        prompts = [item.prompt_ids(client) for item in batch.items]
        # Responses in flight: several engine batches deep, so the batch stays full while
        # groups finish at different times; bounded, so a huge job neither floods the engine's
        # queue nor keeps running long after a cancel.
        per_prompt = options.samples_per_prompt if batch.mode == "sample" else len(batch.items[0].responses or [1])
        limit = asyncio.Semaphore(max(1, 4 * self.concurrency // per_prompt))

        async def bounded(make):
            async with limit:
                job.check_cancelled()
                result = await make()
                job.samples_done += len(result)
                return result

        if batch.mode == "sample":
            job.enter("sampling")
            m = options.samples_per_prompt
            job.samples_total = len(prompts) * m
            groups = await asyncio.gather(
                *(
                    bounded(partial(logprobs.sample, ids, m, options.max_tokens, options.seed + n * m))
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
        if options.scorers is not None:
            job.enter("rewarding")
            rewards = await asyncio.to_thread(self._explicit_rewards, job, groups)
            return normalised_rewards(rewards, options.beta or 1.0)
        rows = [[scored.implicit_rewards() for scored in group] for group in groups]
        scores = np.array(rows, dtype=np.float64)
        return standardised(scores) if options.normalise == "standard" else scores

    def _explicit_rewards(self, job: FitJob, groups: list) -> np.ndarray:
        """(prompts, responses, policies) rewards of the sampled responses by each policy's scorer."""
        batch = job.batch
        decode = self.client.tokenizer.decode
        prompts = [item.scorer_prompt(decode) for item in batch.items for _ in range(len(groups[0]))]
        texts = [decode(scored.token_ids, skip_special_tokens=True) for group in groups for scored in group]
        columns = []
        for policy in self.policies:
            job.check_cancelled()
            columns.append(get_scorer(batch.options.scorers[policy])(prompts, texts))
        return np.array(columns, dtype=np.float64).T.reshape(len(groups), len(groups[0]), len(self.policies))

    async def _score_all(self, prompt_ids: list[int], responses: list[str | list[int]]) -> list:
        logprobs = self.logprobs
        return await asyncio.gather(*(logprobs.score(prompt_ids, logprobs.response_ids(r)) for r in responses))

    def summary(self, job: FitJob) -> dict:
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

    def stored_status(self, stored: dict) -> dict:
        result = stored["result"] or {}
        return {
            **self.stored_lifecycle(stored),
            "result_weight_set": stored["result_set"],
            **{k: result.get(k) for k in ("weights", "objective", "expected_scores", "start")},
        }

    def live_status(self, job: FitJob) -> dict:
        assert job.batch is not None
        latest = job.latest
        return {
            **job.lifecycle(),
            "mode": job.batch.mode,
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
        }

    async def trajectory(self, job_id: str) -> dict:
        """The iterates so far (thinned to MAX_STORED_POINTS): t, weights, objective, expected."""
        job = self.jobs.get(job_id)
        if job is not None:
            points = thinned(job.trajectory)
        else:
            points = ((await self.stored(job_id))["result"] or {}).get("trajectory")
        return {"policies": self.policies, "points": points or []}

    async def plot(self, job_id: str) -> bytes:
        """The trajectory's picture, drawn in a thread (matplotlib takes a while; streams don't wait)."""
        points = (await self.trajectory(job_id))["points"]
        if not points:
            raise Conflict(f"fit job {job_id} has no iterations yet", param="id")
        return await asyncio.to_thread(trajectory_png, points, self.policies, f"MPO fit {job_id}")
