"""Fit jobs, run inside the server: gather what the method needs through the engine, solve (in a
thread), store the result as a weight set, and activate it if asked. Three methods
(server.jobs.fit_batch): mpo (implicit rewards, or explicit rewards from scorers, by MPO's
mirror descent: weights.solver), judged (the worst objective's expected reward under the
mixture, in rounds: server.jobs.judged_fit) and pairs (the worst objective's mean log sigmoid
of preference pairs' margins: weights.pairs). The lifecycle (one at a time, phases, cancel,
persistence) is server.jobs.lifecycle'; a fit's weights are stored with its success in one
transaction.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from scorers import Scorer, ScorerError, get_scorer
from server.exceptions import Conflict, InvalidRequest
from server.jobs.component_logprobs import ComponentLogprobs, SequenceLogprobs
from server.jobs.fit_batch import PAIR_BETA, FitBatch
from server.jobs.judged_fit import JudgedFit, JudgedSetup
from server.jobs.lifecycle import Job, JobRunner
from server.jobs.live_weights import LiveWeights
from server.jobs.pair_scores import PreparedPair, prepare_pairs, score_pairs
from server.serving.engine_client import EngineClient
from store.async_store import AsyncWeightStore
from weights.pairs import fit_pairs, margins
from weights.plot import trajectory_png
from weights.saddle import SaddleIterate, SaddleResult
from weights.solver import FitResult, Iterate, fit_scores, normalised_rewards, standardised

MAX_STORED_POINTS = 500  # trajectory points kept with a finished job (for its plot)


@dataclass
class FitJob(Job):
    batch: FitBatch = field(kw_only=True)  # (keyword-only: after the defaults of Job)
    # phases: queued, sampling | scoring, [rewarding], fitting, storing, succeeded, failed, cancelled
    # (a judged fit in rounds goes back to sampling for each round)
    objectives: list[str] = field(default_factory=list)  # what `expected` is of: mpo's are the policies
    samples_done: int = 0
    samples_total: int = 0
    iteration: int = 0
    latest: Iterate | SaddleIterate | None = None
    trajectory: list[Iterate | SaddleIterate] = field(default_factory=list)
    result: FitResult | SaddleResult | None = None
    result_set: int | None = None
    scorers: dict[str, Scorer] = field(default_factory=dict)  # judged: by objective
    pairs: list[PreparedPair] = field(default_factory=list)
    judged: JudgedFit | None = None
    judge_costs: dict[str, dict] | None = None  # judged: a pairwise judge's calls and tokens, by objective


def thinned(trajectory: list[Iterate | SaddleIterate], points: int = MAX_STORED_POINTS) -> list[dict]:
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
        """Check everything the fit needs before it starts: a bad scorer, objective or prompt is
        a 4xx now, not a failed job later."""
        job = FitJob(uuid.uuid4().hex[:16], batch.data_hash(), batch=batch)
        {"mpo": self._check_mpo, "judged": self._check_judged, "pairs": self._check_pairs}[batch.method](job)
        return await self.launch(job, self._params(batch))

    def _params(self, batch: FitBatch) -> dict:
        """The options as the fit runs them (defaults resolved): kept with the job and its weight set."""
        resolved = {"mode": batch.mode, "method": batch.method, "step": batch.step}
        if batch.mode == "sample":
            resolved["samples_per_prompt"] = batch.samples_per_prompt
        if batch.method == "judged":
            resolved["resample_every"] = batch.resample_every
        sampling = {"max_tokens": self._max_tokens(batch), "temperature": self._temperature(batch)}
        return batch.options.model_dump() | resolved | sampling

    def _max_tokens(self, batch: FitBatch) -> int | None:
        if batch.mode != "sample":
            return None
        return batch.max_tokens or self.client.mixture.manifest.answers.max_tokens

    def _temperature(self, batch: FitBatch) -> float | None:
        """A judged fit samples at an eval's temperature (every other fit samples the reference at 1)."""
        if batch.method != "judged" or batch.mode != "sample":
            return None
        given = batch.options.temperature
        return self.client.mixture.manifest.answers.temperature if given is None else given

    def _check_mpo(self, job: FitJob) -> None:
        batch = job.batch
        job.objectives = self.policies
        if batch.mode == "rewards":
            unknown = {k for item in batch.prompts for r in item.rewards or [] for k in r} - set(self.policies)
            missing = [p for p in self.policies if any(p not in r for i in batch.prompts for r in i.rewards or [])]
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

    def _check_judged(self, job: FitJob) -> None:
        batch = job.batch
        if batch.mode == "rewards":
            job.objectives = sorted((batch.prompts[0].rewards or [{}])[0])
        else:
            specs = batch.options.scorers or self.client.mixture.manifest.objectives
            if not specs:
                raise InvalidRequest(
                    "a judged fit needs objectives: options.scorers, or objectives in the mixture's manifest",
                    param="options.scorers",
                )
            job.objectives = list(specs)
            job.scorers = {name: self._scorer(spec, f"options.scorers.{name}") for name, spec in specs.items()}
            pairwise = [name for name, scorer in job.scorers.items() if scorer.compare]
            if pairwise and batch.options.scale != "win":
                raise InvalidRequest(
                    f"options.scale: the pairwise judges of {pairwise} give win probabilities, not rewards to "
                    "standardise; use scale 'win'",
                    param="options.scale",
                )
        if batch.mode == "sample":
            for n, item in enumerate(batch.items):
                try:
                    self.client.check_length(item.prompt_ids(self.client), self._max_tokens(batch))
                except InvalidRequest as err:
                    raise InvalidRequest(f"{batch.where(n)}: {err.message}", param=err.param) from None

    def _check_pairs(self, job: FitJob) -> None:
        job.pairs = prepare_pairs(job.batch, self.client, self.logprobs)
        present = {p.objective for p in job.pairs}
        job.objectives = [o for o in self.client.mixture.manifest.objective_names if o in present]

    @staticmethod
    def _scorer(spec: str, param: str) -> Scorer:
        try:
            return get_scorer(spec)
        except ScorerError as err:
            raise InvalidRequest(f"{param}: {err}", param=param) from None

    def _check_scorers(self, scorers: dict[str, str]) -> None:
        if sorted(scorers) != sorted(self.policies):
            raise InvalidRequest(
                f"options.scorers must name exactly the policies {self.policies}; got {sorted(scorers)}",
                param="options.scorers",
            )
        for policy, spec in scorers.items():
            if self._scorer(spec, f"options.scorers.{policy}").compare:
                raise InvalidRequest(
                    f"options.scorers.{policy}: {spec!r} compares two answers; MPO's rewards score one (use it in "
                    "a judged fit)",
                    param=f"options.scorers.{policy}",
                )

    async def execute(self, job: FitJob) -> None:
        fits: dict[str, Callable[[FitJob], Awaitable[FitResult | SaddleResult]]] = {
            "mpo": self._mpo,
            "judged": self._judged,
            "pairs": self._pair_fit,
        }
        job.result = result = await fits[job.batch.method](job)
        options = job.batch.options
        job.enter("storing")
        weights = dict(zip(self.policies, result.weights, strict=True))
        # The weight set and the job's success are one transaction: a crash leaves both or neither.
        source = {
            "source": "fit",
            "job_id": job.id,
            "params": self._params(job.batch),
            "data_hash": job.data_hash,
            "job_result": self.summary(job),
        }
        if options.activate:
            stored = await self.weights.apply_and_store(weights, **source)
        else:
            stored = await self.store.add(weights, **source)
            self.weights.sets.add(stored)
        job.result_set = stored.id

    def _on_iterate(self, job: FitJob, iterate: Iterate | SaddleIterate) -> None:
        job.check_cancelled()
        job.iteration, job.latest = iterate.t, iterate
        job.trajectory.append(iterate)

    async def _mpo(self, job: FitJob) -> FitResult:
        """MPO's mirror descent (weights.solver) on implicit or explicit rewards."""
        scores = await self._scores(job)
        job.enter("fitting")
        options = job.batch.options
        return await asyncio.to_thread(
            fit_scores,
            scores,
            options.iterations,
            job.batch.step,
            options.batch_size,
            options.seed,
            lambda it: self._on_iterate(job, it),
        )

    async def _judged(self, job: FitJob) -> SaddleResult:
        """The worst objective's expected reward under the mixture, in rounds (server.jobs.judged_fit)."""
        batch, options = job.batch, job.batch.options
        prompts = [item.prompt_ids(self.client) for item in batch.items]
        mixture = self.client.mixture
        # What each round samples; a batch that brings its answers samples nothing, and they are
        # taken as the reference's at temperature 1.
        max_tokens, temperature = self._max_tokens(batch) or 0, self._temperature(batch)
        tau = 1.0 if temperature is None else temperature
        rounds = -(-options.iterations // batch.resample_every)
        per_prompt = batch.samples_per_prompt
        job.samples_total = rounds * len(prompts) * per_prompt
        bounded = self._bounded(job, per_prompt)

        async def sample(
            n: int, m: int, vector: list[float], around: list[float] | None, seed: int
        ) -> list[SequenceLogprobs]:
            if job.phase != "sampling":
                job.enter("sampling")
            draw = partial(self.logprobs.sample, prompts[n], m, max_tokens, seed, vector, tau, around)
            return await bounded(draw)

        def reward(groups: list[list[SequenceLogprobs]]) -> np.ndarray:
            job.enter("rewarding")
            if batch.mode == "rewards":
                given = [[[r[o] for o in job.objectives] for r in item.rewards or []] for item in batch.prompts]
                rewards = np.array(given, dtype=np.float64)
            else:
                rewards = self._rewards(job, groups, job.objectives, [job.scorers[o] for o in job.objectives])
                if options.scale == "win":
                    rewards = self._censored(job, groups, rewards)
            job.enter("fitting")
            return rewards

        higher = [batch.mode == "rewards" or job.scorers[o].direction == "higher" for o in job.objectives]
        pairwise = [batch.mode != "rewards" and job.scorers[o].compare is not None for o in job.objectives]
        setup = JudgedSetup(
            self.policies,
            higher,
            pairwise,
            options.scale,
            options.family,
            options.iterations,
            batch.resample_every,
            batch.samples_per_prompt,
            tau,
            batch.step,
            options.adversary_step,
            options.seed,
        )
        reference = mixture.one_hot(mixture.manifest.reference.name)
        job.judged = JudgedFit(
            setup,
            len(prompts),
            sample,
            reward,
            lambda w: mixture.vector(self._named(w)),
            reference,
            lambda answers, pooled, own: self._compared(job, answers, pooled, own),
        )
        given = None
        if batch.mode != "sample":
            centre = mixture.vector(self._named(np.full(len(self.policies), 1 / len(self.policies))))
            around = centre if options.family == "served" else None
            given = await self._gather(job, prompts, per_prompt, None, bounded, around)
        before = {o: s.report() for o, s in job.scorers.items() if s.report}
        result = await job.judged.run(given, lambda it: self._on_iterate(job, it))
        job.judge_costs = {o: job.scorers[o].cost_since(was) for o, was in before.items()} or None
        return result

    def _compared(self, job: FitJob, answers: list, pooled: list, own_pool: bool) -> np.ndarray:
        """Each answer's win probability against its prompt's pool by every pairwise judge (its
        mean outcome against each pool answer; against the others where the answers are the
        pool): (prompts, samples, objectives), NaN on the other objectives."""
        job.enter("rewarding")
        decode = self.client.tokenizer.decode
        texts = [[decode(a.token_ids, skip_special_tokens=True) for a in group] for group in answers]
        pool = [[decode(a.token_ids, skip_special_tokens=True) for a in group] for group in pooled]
        prompts = [item.scorer_prompt(decode) for item in job.batch.items]
        pairs = [
            (n, m, r)
            for n, group in enumerate(texts)
            for m in range(len(group))
            for r in range(len(pool[n]))
            if not (own_pool and r == m)
        ]
        shape = (len(texts), len(texts[0]), len(job.objectives))
        compared = np.full(shape, np.nan)
        for k, objective in enumerate(job.objectives):
            scorer = job.scorers[objective]
            if scorer.compare is None:
                continue
            job.check_cancelled()
            outcomes = scorer.outcomes(
                [prompts[n] for n, _, _ in pairs], [texts[n][m] for n, m, _ in pairs], [pool[n][r] for n, _, r in pairs]
            )
            sums, counts = np.zeros(shape[:2]), np.zeros(shape[:2])
            for (n, m, _), outcome in zip(pairs, outcomes, strict=True):
                sums[n, m] += outcome
                counts[n, m] += 1
            compared[:, :, k] = sums / counts
        job.enter("fitting")
        return compared

    @staticmethod
    def _censored(job: FitJob, groups: list[list[SequenceLogprobs]], rewards: np.ndarray) -> np.ndarray:
        """On length judges, every sampled answer cut at the token limit the worst reward there
        is, as an eval counts it (evaluation.stats.censor_cut): cut answers tie among themselves
        and lose to every answer that ended. Given responses have no finish reason: kept."""
        cut = np.array([[a.finish_reason == "length" for a in group] for group in groups], dtype=bool)
        censored = rewards.copy()
        for k, objective in enumerate(job.objectives):
            scorer = job.scorers[objective]
            if scorer.length:
                censored[:, :, k][cut] = -np.inf if scorer.direction == "higher" else np.inf
        return censored

    async def _pair_fit(self, job: FitJob) -> SaddleResult:
        """The worst objective's mean log sigmoid of the pairs' sequence-level margins (weights.pairs)."""
        job.enter("scoring")
        job.samples_total = 2 * len(job.pairs)

        def done(count: int) -> None:
            job.check_cancelled()
            job.samples_done += count

        scored = await score_pairs(self.logprobs, job.pairs, None, 4 * self.concurrency, done)
        chosen = np.array([p.chosen.logprobs[: 1 + len(self.policies)] for p in scored], dtype=np.float64)
        rejected = np.array([p.rejected.logprobs[: 1 + len(self.policies)] for p in scored], dtype=np.float64)
        index = {name: k for k, name in enumerate(job.objectives)}
        job.enter("fitting")
        options = job.batch.options
        return await asyncio.to_thread(
            fit_pairs,
            margins(chosen, rejected),
            np.array([index[p.objective] for p in scored]),
            len(job.objectives),
            options.beta or PAIR_BETA,
            options.iterations,
            job.batch.step,
            options.adversary_step,
            lambda it: self._on_iterate(job, it),
        )

    def _named(self, weights: np.ndarray) -> dict[str, float]:
        return dict(zip(self.policies, np.asarray(weights).tolist(), strict=True))

    def _bounded(self, job: FitJob, per_prompt: int):
        """Responses in flight: several engine batches deep, so the batch stays full while groups
        finish at different times; bounded, so a huge job neither floods the engine's queue nor
        keeps running long after a cancel."""
        limit = asyncio.Semaphore(max(1, 4 * self.concurrency // max(1, per_prompt)))

        async def bounded(make):
            async with limit:
                job.check_cancelled()
                result = await make()
                job.samples_done += len(result)
                return result

        return bounded

    async def _gather(
        self, job: FitJob, prompts: list[list[int]], per_prompt: int, max_tokens, bounded, around=None
    ) -> list:
        """The batch's responses with every component's log-probs: sampled from the reference
        (prompts only) or the given ones scored (with the served expansion around `around`)."""
        batch, options = job.batch, job.batch.options
        if batch.mode == "sample":
            job.enter("sampling")
            m = per_prompt
            return list(
                await asyncio.gather(
                    *(
                        bounded(partial(self.logprobs.sample, ids, m, max_tokens, options.seed + n * m))
                        for n, ids in enumerate(prompts)
                    )
                )
            )
        job.enter("scoring")
        return list(
            await asyncio.gather(
                *(
                    bounded(partial(self._score_all, ids, item.responses or [], around))
                    for ids, item in zip(prompts, batch.prompts, strict=True)
                )
            )
        )

    async def _scores(self, job: FitJob) -> np.ndarray:
        """(prompts, responses, objectives) implicit rewards, or normalised explicit rewards
        (given with the batch, or the scorers' rewards of responses sampled from the reference)."""
        batch, options = job.batch, job.batch.options
        if batch.mode == "rewards":
            rewards = np.array([[[r[p] for p in self.policies] for r in item.rewards or []] for item in batch.prompts])
            return normalised_rewards(rewards, options.beta or 1.0)
        prompts = [item.prompt_ids(self.client) for item in batch.items]
        per_prompt = batch.samples_per_prompt
        job.samples_total = len(prompts) * per_prompt
        groups = await self._gather(job, prompts, per_prompt, batch.max_tokens, self._bounded(job, per_prompt))
        if options.scorers is not None:
            job.enter("rewarding")
            scorers = [get_scorer(options.scorers[p]) for p in self.policies]
            rewards = await asyncio.to_thread(self._rewards, job, groups, self.policies, scorers)
            return normalised_rewards(rewards, options.beta or 1.0)
        rows = [[scored.implicit_rewards() for scored in group] for group in groups]
        scores = np.array(rows, dtype=np.float64)
        return standardised(scores) if options.normalise == "standard" else scores

    def _rewards(self, job: FitJob, groups: list, names: list[str], scorers: list[Scorer]) -> np.ndarray:
        """(prompts, responses, objectives) rewards of the responses by each objective's scorer."""
        decode = self.client.tokenizer.decode
        prompts = [
            item.scorer_prompt(decode) for item, group in zip(job.batch.items, groups, strict=True) for _ in group
        ]
        texts = [decode(scored.token_ids, skip_special_tokens=True) for group in groups for scored in group]
        columns = []
        for scorer in scorers:
            job.check_cancelled()
            # a pairwise judge has no reward of one answer: its win probabilities come from _compared
            columns.append([np.nan] * len(texts) if scorer.compare else scorer(prompts, texts))
        return np.array(columns, dtype=np.float64).T.reshape(len(groups), len(groups[0]), len(names))

    async def _score_all(self, prompt_ids: list[int], responses: list[str | list[int]], around=None) -> list:
        logprobs = self.logprobs
        scores = (logprobs.score(prompt_ids, logprobs.response_ids(r), None, around) for r in responses)
        return await asyncio.gather(*scores)

    def summary(self, job: FitJob) -> dict:
        """What is stored with a finished job: its outcome and the (thinned) trajectory."""
        return {
            "policies": self.policies,
            "objectives": job.objectives,
            **self._outcome(job),
            "samples": job.samples_done,
            "trajectory": thinned(job.trajectory),
        }

    OUTCOME = ("method", "weights", "objective", "expected_scores", "start", "ess", "rounds", "judge_costs")

    def _outcome(self, job: FitJob) -> dict:
        result, names = job.result, job.objectives
        last = job.trajectory[-1] if job.trajectory else None
        return {
            "method": job.batch.method,
            "weights": dict(zip(self.policies, result.weights, strict=True)) if result else None,
            "objective": result.objective if result else None,
            "expected_scores": dict(zip(names, result.expected, strict=True)) if result else None,
            "start": None
            if result is None
            else {
                "objective": result.start_objective,
                "expected_scores": dict(zip(names, result.start_expected, strict=True)),
            },
            # judged: the ESS share at the last iterate, and each round's proposal and family gap
            "ess": getattr(last, "ess", None),
            "rounds": job.judged.report(names) if job.judged else None,
            "judge_costs": job.judge_costs,  # judged with an LLM judge: its calls and tokens
        }

    def stored_status(self, stored: dict) -> dict:
        result = stored["result"] or {}
        return {
            **self.stored_lifecycle(stored),
            "result_weight_set": stored["result_set"],
            **{k: result.get(k) for k in self.OUTCOME},
        }

    def live_status(self, job: FitJob) -> dict:
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
                "expected_scores": dict(zip(job.objectives, latest.expected, strict=True)),
                "ess": getattr(latest, "ess", None),
            },
            **self._outcome(job),
            "result_weight_set": job.result_set,
            "params": self._params(job.batch),
        }

    async def trajectory(self, job_id: str) -> dict:
        """The iterates so far (thinned to MAX_STORED_POINTS): t, weights, objective, expected
        (of `objectives`), and for judged and pair fits the objectives' player (adversary) and ESS."""
        job = self.jobs.get(job_id)
        if job is not None:
            points, objectives, method = thinned(job.trajectory), job.objectives, job.batch.method
        else:
            stored = await self.stored(job_id)
            result = stored["result"] or {}
            points = result.get("trajectory") or []
            objectives = result.get("objectives") or self.policies
            method = (stored["params"] or {}).get("method", "mpo")
        return {"policies": self.policies, "objectives": objectives, "method": method, "points": points or []}

    async def plot(self, job_id: str) -> bytes:
        """The trajectory's picture, drawn in a thread (matplotlib takes a while; streams don't wait)."""
        trajectory = await self.trajectory(job_id)
        if not trajectory["points"]:
            raise Conflict(f"fit job {job_id} has no iterations yet", param="id")
        return await asyncio.to_thread(
            trajectory_png,
            trajectory["points"],
            self.policies,
            trajectory["objectives"],
            trajectory["method"],
            f"{trajectory['method']} fit {job_id}",
        )
