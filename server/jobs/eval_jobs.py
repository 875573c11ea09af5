"""Eval jobs: what each candidate's answers to held-out prompts score on every objective, or
how each candidate ranks the answers of held-out preference pairs.

Every candidate (policy, mixture, stored weight set, explicit weights, baseline) answers the
same prompts with the same seeds, so its rewards pair with the reference's answer for answer;
the statistics are evaluation.stats'. Candidates run one after another, so each one's tokens/s
is its own. The job ends with one transaction: the result, and the Min of each evaluated weight
set kept with that set; the answers and their rewards are written as JSONL beside the store
first. A batch of pairs is a pair eval instead (server.jobs.pair_eval: margins by forced
decoding, no answers sampled), whose per-pair margins are the file. The lifecycle (one at a
time, phases, cancel, persistence) is server.jobs.lifecycle'.
"""

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from evaluation.plot import eval_png, pair_eval_png
from evaluation.stats import pareto_front
from evaluation.summary import summarise_candidates
from mixer.needed import WEIGHTS_ARG
from scorers import Scorer, ScorerError, get_scorer
from server.exceptions import Conflict, InvalidRequest, NotFound, ServiceError
from server.jobs.component_logprobs import ComponentLogprobs
from server.jobs.eval_batch import EvalBatch, WeightsCandidate
from server.jobs.lifecycle import Job, JobRunner
from server.jobs.live_weights import LiveWeights
from server.jobs.pair_eval import PairCandidate, PairEval
from server.jobs.pair_scores import PreparedPair, prepare_pairs
from server.serving.engine_client import EngineClient
from store.async_store import AsyncWeightStore


@dataclass(frozen=True)
class Candidate:
    name: str  # label in the results
    model: str  # the model id it is served under
    vector: list[float]  # weights over all components, reference first
    weights: dict[str, float] | None = None  # policy weights, for mixtures
    weight_set: int | None = None  # the stored weight set it is, if any


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int
    finish_reason: str | None


@dataclass
class EvalJob(Job):
    batch: EvalBatch = field(kw_only=True)  # (keyword-only: after the defaults of Job)
    candidates: list[Candidate] = field(default_factory=list)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    reference: str = ""
    prompt_ids: list[list[int]] = field(default_factory=list)
    prompts: list = field(default_factory=list)  # as the scorers see them (text or chat), by prompt
    max_tokens: int = 0  # the options' or the manifest's
    temperature: float = 1.0
    pairs: list[PreparedPair] = field(default_factory=list)  # a pair eval's
    # phases: queued, generating, scoring, storing, succeeded, failed, cancelled (a pair eval: scoring, storing)
    responses_done: int = 0
    responses_total: int = 0
    current: str | None = None  # the candidate generating now
    scored: int = 0  # (candidate, objective) pairs scored
    judge_costs: dict[str, dict] = field(default_factory=dict)  # a pairwise judge's calls and tokens, by objective
    result: dict | None = None


class EvalJobs(JobRunner[EvalJob]):
    kind = "eval"

    def __init__(
        self,
        client: EngineClient,
        logprobs: ComponentLogprobs,
        weights: LiveWeights,
        store: AsyncWeightStore,
        replica: str,
        concurrency: int,
        folder: Path,
    ) -> None:
        super().__init__(store, replica)
        self.client = client
        self.logprobs = logprobs
        self.weights = weights
        self.concurrency = concurrency  # the engine's batch size (max_num_seqs)
        self.folder = folder  # where answers are kept, <job>.jsonl

    async def start(self, batch: EvalBatch) -> EvalJob:
        """Check everything a job needs before it starts: a bad candidate, scorer or prompt is a
        4xx now, not a failed job later."""
        options = batch.options
        candidates = await self._candidates(batch)
        manifest = self.client.mixture.manifest
        reference = options.reference or manifest.reference.name
        if reference not in {c.name for c in candidates}:
            candidates.insert(0, await self._candidate(reference, "options.reference"))
        job = EvalJob(uuid.uuid4().hex[:16], batch.data_hash(), batch=batch, candidates=candidates, reference=reference)
        if options.against is not None and options.against not in {c.name for c in candidates}:
            raise InvalidRequest(
                f"options.against: {options.against!r} is not one of the candidates {[c.name for c in candidates]}",
                param="options.against",
            )
        if batch.pairs:
            job.pairs = prepare_pairs(batch, self.client, self.logprobs)
            job.responses_total = 2 * len(job.pairs)
            return await self.launch(job, self._params(job))
        specs = options.objectives or manifest.objectives
        if not specs:
            raise InvalidRequest(
                "an eval needs objectives: options.objectives, or objectives in the mixture's manifest",
                param="options.objectives",
            )
        for objective, spec in specs.items():
            try:
                job.scorers[objective] = get_scorer(spec)
            except ScorerError as err:
                raise InvalidRequest(
                    f"options.objectives.{objective}: {err}", param=f"options.objectives.{objective}"
                ) from None
        client = self.client
        job.max_tokens = options.max_tokens or manifest.answers.max_tokens
        job.temperature = manifest.answers.temperature if options.temperature is None else options.temperature
        job.prompt_ids = [item.prompt_ids(client) for item in batch.items]
        for n, ids in enumerate(job.prompt_ids):
            try:
                client.check_length(ids, job.max_tokens)
            except InvalidRequest as err:
                raise InvalidRequest(f"{batch.where(n)}: {err.message}", param=err.param) from None
        job.prompts = [item.scorer_prompt(client.tokenizer.decode) for item in batch.items]
        job.responses_total = len(candidates) * len(job.prompt_ids) * options.samples_per_prompt
        return await self.launch(job, self._params(job))

    def _params(self, job: EvalJob) -> dict:
        """What the job runs with, the defaults resolved: stored with it and shown by its status."""
        options = job.batch.options.model_dump()
        if job.pairs:
            return options | {"kind": "pairs"}
        return options | {"objectives": self._specs(job), "max_tokens": job.max_tokens, "temperature": job.temperature}

    @staticmethod
    def _specs(job: EvalJob) -> dict[str, str]:
        return {objective: scorer.spec for objective, scorer in job.scorers.items()}

    async def _candidates(self, batch: EvalBatch) -> list[Candidate]:
        mixture = self.client.mixture
        candidates = []
        for n, given in enumerate(batch.options.candidates):
            if isinstance(given, WeightsCandidate):
                weights = mixture.validate_weights(given.weights, f"options.candidates.{n}.weights")
                label = given.name or "weights(" + ",".join(f"{k}={v:.2f}" for k, v in weights.items()) + ")"
                candidates.append(Candidate(label, mixture.name, mixture.vector(weights), weights))
            else:
                candidates.append(await self._candidate(given, f"options.candidates.{n}"))
        names = [c.name for c in candidates]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidRequest(f"candidate names must be unique; repeated: {repeated}", param="options.candidates")
        return candidates

    async def _candidate(self, model: str, param: str) -> Candidate:
        mixture = self.client.mixture
        try:
            resolved = await mixture.resolve(model, None)
        except ServiceError as err:
            raise err.under(param) from None
        set_id = mixture.stored_set_id(model)
        weights: dict[str, float] | None
        if model == mixture.name:  # the mixture's defaults: the active weight set
            active = self.weights.active_id
            known = None if active is None else await self.weights.sets.get(active)
            set_id = active if known is not None and known.weights == mixture.default_weights else None
            weights = dict(mixture.default_weights)
        else:
            stored = None if set_id is None else await self.weights.sets.get(set_id)
            weights = stored.weights if stored is not None else None
        return Candidate(model, model, resolved.vector, weights, set_id)

    async def execute(self, job: EvalJob) -> None:
        if job.pairs:
            return await self._execute_pairs(job)
        job.enter("generating")
        answers: dict[str, list[list[Answer]]] = {}
        speed: dict[str, tuple[int, float]] = {}
        for candidate in job.candidates:
            job.current = candidate.name
            began = time.perf_counter()
            answers[candidate.name] = await self._generate(job, candidate)
            tokens = sum(a.tokens for group in answers[candidate.name] for a in group)
            speed[candidate.name] = (tokens, time.perf_counter() - began)
        job.current = None
        job.enter("scoring")
        rewards = await asyncio.to_thread(self._rewards, job, answers)
        job.enter("storing")
        job.result = self._result(job, answers, rewards, speed)
        path = await asyncio.to_thread(self._write_answers, job, answers, rewards)
        job.result["answers_file"] = path.name
        evaluated = {
            c["weight_set"]: (c["min"]["win_rate"], c["min"]["objective"])
            for c in job.result["candidates"]
            if c["weight_set"] is not None
        }
        await self.store.finish_job(job.id, "succeeded", result=job.result, evaluated_sets=evaluated)

    async def _execute_pairs(self, job: EvalJob) -> None:
        """Every candidate's margin on every pair (server.jobs.pair_eval); the per-pair margins
        are the job's file. A pair eval's Min is an accuracy, not a win rate: no weight set keeps it."""
        job.enter("scoring")
        evaluation = PairEval([PairCandidate(c.name, c.vector) for c in job.candidates], len(self.policies))

        def done(count: int) -> None:
            job.check_cancelled()
            job.responses_done += count

        scored = await evaluation.score(self.logprobs, job.pairs, 4 * self.concurrency, done)
        present = {p.objective for p in job.pairs}
        objectives = [o for o in self.client.mixture.manifest.objective_names if o in present]
        job.enter("storing")
        computed = evaluation.result(job.pairs, scored, objectives, job.batch.options.against)
        job.result = {
            "kind": "pairs",
            "objectives": objectives,
            "pairs": computed["pairs"],
            "reference": job.reference,
            "against": job.batch.options.against,
            "candidates": [
                {"name": c.name, "model": c.model, "weights": c.weights, "weight_set": c.weight_set}
                | computed["summary"][c.name]
                for c in job.candidates
            ],
        }
        decode = self.client.tokenizer.decode
        rows = (
            {
                "pair": n,
                "objective": pair.objective,
                "prompt": job.batch.items[n].scorer_prompt(decode),
                "chosen": decode(pair.chosen, skip_special_tokens=True),
                "rejected": decode(pair.rejected, skip_special_tokens=True),
                "margins": {name: float(m[n]) for name, m in computed["served"].items()},
                "linear_margins": {name: float(m[n]) for name, m in computed["linear"].items() if m is not None},
            }
            for n, pair in enumerate(job.pairs)
        )
        path = await asyncio.to_thread(self._write_jsonl, job, rows)
        job.result["answers_file"] = path.name
        await self.store.finish_job(job.id, "succeeded", result=job.result)

    @property
    def policies(self) -> list[str]:
        return self.client.mixture.manifest.policy_names

    async def _generate(self, job: EvalJob, candidate: Candidate) -> list[list[Answer]]:
        options = job.batch.options
        m = options.samples_per_prompt
        limit = asyncio.Semaphore(max(1, 4 * self.concurrency // m))
        client = self.client

        async def answer(n: int, ids: list[int]) -> list[Answer]:
            async with limit:
                job.check_cancelled()
                params = SamplingParams(
                    n=m,
                    temperature=job.temperature,
                    top_p=options.top_p,
                    max_tokens=job.max_tokens,
                    seed=options.seed + n * m,  # child j is seeded seed + n*m + j: the same for every candidate
                    output_kind=RequestOutputKind.FINAL_ONLY,
                    extra_args={WEIGHTS_ARG: candidate.vector},
                )
                output = await client.final(ids, params, f"eval-{job.id}-{uuid.uuid4().hex[:8]}")
                completions = sorted(output.outputs, key=lambda c: c.index)
                job.responses_done += len(completions)
                return [
                    Answer(
                        client.tokenizer.decode(c.token_ids, skip_special_tokens=True),
                        len(c.token_ids),
                        c.finish_reason,
                    )
                    for c in completions
                ]

        return list(await asyncio.gather(*(answer(n, ids) for n, ids in enumerate(job.prompt_ids))))

    def _rewards(self, job: EvalJob, answers: dict[str, list[list[Answer]]]) -> dict[str, dict[str, list[list[float]]]]:
        """rewards[candidate][objective][prompt][sample], each scorer batched over all answers."""
        m = job.batch.options.samples_per_prompt
        prompts = [prompt for prompt in job.prompts for _ in range(m)]
        references = [a.text for group in answers[job.reference] for a in group]
        before = {o: s.report() for o, s in job.scorers.items() if s.report}
        rewards: dict[str, dict[str, list[list[float]]]] = {}
        for name, groups in answers.items():
            texts = [a.text for group in groups for a in group]
            rewards[name] = {}
            for objective, scorer in job.scorers.items():
                job.check_cancelled()
                if scorer.compare is None:
                    flat = scorer(prompts, texts)
                elif name == job.reference:  # the reference against itself: a tie, without asking
                    flat = [0.5] * len(texts)
                else:  # a pairwise judge: the outcome against the reference's answer is the reward
                    flat = scorer.outcomes(prompts, texts, references)
                rewards[name][objective] = [flat[i : i + m] for i in range(0, len(flat), m)]
                job.scored += 1
        job.judge_costs = {o: job.scorers[o].cost_since(was) for o, was in before.items()}
        return rewards

    def _result(self, job: EvalJob, answers, rewards, speed) -> dict:
        directions = {o: s.direction for o, s in job.scorers.items()}
        cut = {
            name: [[a.finish_reason == "length" for a in group] for group in groups] for name, groups in answers.items()
        }
        lengths = {o for o, s in job.scorers.items() if s.length}
        pairwise = {o for o, s in job.scorers.items() if s.compare}
        options = job.batch.options
        summary = summarise_candidates(rewards, job.reference, directions, options.against, cut, lengths, pairwise)
        candidates = []
        for c in job.candidates:
            tokens, seconds = speed[c.name]
            groups = answers[c.name]
            count = sum(len(g) for g in groups)
            candidates.append(
                {
                    "name": c.name,
                    "model": c.model,
                    "weights": c.weights,
                    "weight_set": c.weight_set,
                    **summary[c.name],
                    "tokens": tokens,
                    "mean_tokens": tokens / count,
                    "share_cut_off": sum(a.finish_reason == "length" for g in groups for a in g) / count,
                    "seconds": seconds,
                    "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
                }
            )
        options = job.batch.options
        means = {c["name"]: [c["objectives"][o]["reward"]["mean"] for o in job.scorers] for c in candidates}
        return {
            "objectives": {
                o: s.describe() | ({"cost": job.judge_costs[o]} if o in job.judge_costs else {})
                for o, s in job.scorers.items()
            },
            "pareto_front": pareto_front(means, list(directions.values())),
            "reference": job.reference,
            "against": options.against,
            "prompts": len(job.prompt_ids),
            "samples_per_prompt": options.samples_per_prompt,
            "candidates": candidates,
        }

    def _write_answers(self, job: EvalJob, answers, rewards) -> Path:
        """Every answer with its rewards, one JSON line each."""
        rows = (
            {
                "candidate": name,
                "prompt_index": p,
                "sample": j,
                "prompt": prompt,
                "response": a.text,
                "tokens": a.tokens,
                "finish_reason": a.finish_reason,
                "rewards": {o: rewards[name][o][p][j] for o in job.scorers},
            }
            for name, groups in answers.items()
            for p, (prompt, group) in enumerate(zip(job.prompts, groups, strict=True))
            for j, a in enumerate(group)
        )
        return self._write_jsonl(job, rows)

    def _write_jsonl(self, job: EvalJob, rows) -> Path:
        """The job's file, <job>.jsonl, one JSON line per row; written whole or not at all."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{job.id}.jsonl"
        staging = path.with_suffix(".jsonl.tmp")
        with staging.open("w") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
            out.flush()
            os.fsync(out.fileno())
        staging.replace(path)
        return path

    def summary(self, job: EvalJob) -> dict:
        return {"candidates": [c.name for c in job.candidates], "responses": job.responses_done}

    def live_status(self, job: EvalJob) -> dict:
        return {
            **job.lifecycle(),
            "progress": {
                "responses_done": job.responses_done,
                "responses_total": job.responses_total,
                "candidate": job.current,
                "scored": job.scored,
                "to_score": len(job.candidates) * len(job.scorers),
            },
            "candidates": [c.name for c in job.candidates],
            "params": self._params(job),
            "result": job.result,
        }

    def stored_status(self, stored: dict) -> dict:
        result = stored["result"] if stored["status"] == "succeeded" else None
        return {**self.stored_lifecycle(stored), "result": result}

    async def _finished_result(self, job_id: str) -> dict:
        status = await self.status(job_id)
        if status["phase"] != "succeeded" or not status.get("result"):
            raise Conflict(f"eval job {job_id} has not succeeded (phase {status['phase']})", param="id")
        return status["result"]

    async def plot(self, job_id: str) -> bytes:
        """The result's picture, drawn in a thread (matplotlib takes a while; streams don't wait)."""
        result = await self._finished_result(job_id)
        draw = pair_eval_png if result.get("kind") == "pairs" else eval_png
        return await asyncio.to_thread(draw, result, f"eval {job_id}")

    async def answers_path(self, job_id: str) -> Path:
        path = self.folder / (await self._finished_result(job_id))["answers_file"]
        if not path.is_file():
            raise NotFound(f"the answers of eval job {job_id} are no longer on this server", param="id")
        return path
