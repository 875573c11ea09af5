"""The judged fit's work through the engine: the reference's answers, the rounds of answers from
the served mixture, their rewards on every objective, and the saddle solved on each round.

Round 0 is the reference's answers to every prompt (sampled, or the batch's own responses,
taken as the reference's at temperature 1): they are the pool each answer's win probability is
measured against, and the first round's samples. With `resample_every` R, every R iterations
the mixture is sampled again at the current weights (served, per token, exactly as a request
with those weights), and the next R iterations judge weights on those answers. Every sampled
answer comes with the log-prob of the distribution that drew it (mixer.recording, at the
sampling temperature): the importance weights' denominator.

The family optimised (weights.judged) is the served one by default: every answer is recorded
with the second-order expansion of its served log-prob around the round's centre (the weights
it was drawn at; the uniform start for round 0), which is exact there in value and gradient.
'sequence' optimises the sequence-level product instead, which needs no expansion. Answers are
sampled at an eval's temperature tau (the manifest's answers.temperature unless the options
say), and the family is then the mixture at tau: the policies' log-probs enter divided by tau,
the expansion's gradient and Hessian by tau and tau squared (weights.judged is written for
tau = 1). Each on-policy round also measures the gap between the families: the plain mean of
its rewards is the served mixture's expectation at its weights, the sequence-level product's
importance-weighted estimate at the same weights beside it.

A pairwise judge (an LLM judge: scorers.llm_judge) has no reward of one answer: its win
probability is the mean of its outcomes against the prompt's pool answers, asked directly
(`compare`), where the other judges' come from comparing rewards. On a length judge an answer
cut at the token limit counts as the longest (server.jobs.fit_jobs censors it, as evals do).
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import numpy as np

from server.jobs.component_logprobs import SequenceLogprobs
from weights.judged import Expansion, Samples, estimate, fit_round, standardised_against, win_probabilities
from weights.saddle import SaddleIterate, SaddleResult

# (prompt index, samples, weights over all components, the expansion's centre or None, seed) ->
# answers drawn at those weights
Sampler = Callable[[int, int, list[float], list[float] | None, int], Awaitable[list[SequenceLogprobs]]]
# answers[prompt][sample] -> raw rewards (prompts, samples, objectives), in a thread
Rewarder = Callable[[list[list[SequenceLogprobs]]], np.ndarray]
# (answers, the pool: the reference's answers, whether the answers are the pool) -> each answer's
# win probability against its prompt's pool by the pairwise judges (prompts, samples, objectives;
# NaN on the other objectives), in a thread
Comparer = Callable[[list[list[SequenceLogprobs]], list[list[SequenceLogprobs]], bool], np.ndarray]


@dataclass
class Round:
    index: int
    first_t: int  # the iterations it ran: first_t + 1 ...
    proposal: dict[str, float] | None  # the weights its answers were drawn at; None: the reference
    ess: float  # ESS share at the round's start (1: as good as the mixture's own answers)
    # On-policy rounds: each objective's expected reward at `proposal` by the served mixture (the
    # answers' plain mean) and by the sequence-level product (importance-weighted, same answers).
    served: list[float] | None = None
    sequence: list[float] | None = None


@dataclass
class JudgedSetup:
    policies: list[str]
    higher: list[bool]  # per objective: is a larger raw reward better
    pairwise: list[bool]  # per objective: judged by comparing two answers (scorers.llm_judge)
    scale: str  # 'win' or 'standard'
    family: str  # 'served' or 'sequence'
    iterations: int
    resample_every: int  # iterations per round
    samples_per_prompt: int
    temperature: float
    step: float
    adversary_step: float
    seed: int


class JudgedFit:
    def __init__(
        self,
        setup: JudgedSetup,
        prompts: int,
        sample: Sampler,
        reward: Rewarder,
        vector,
        reference: list[float],
        compare: Comparer | None = None,
    ) -> None:
        self.setup = setup
        self.prompts = prompts
        self.sample, self.reward, self.compare = sample, reward, compare
        self.vector = vector  # policy weights -> a vector over all components
        self.reference = reference  # the vector of the reference alone
        self.rounds: list[Round] = []

    async def run(
        self, given: list[list[SequenceLogprobs]] | None, on_iterate: Callable[[SaddleIterate], None]
    ) -> SaddleResult:
        """Round 0 is drawn from the reference, or `given` (the batch's responses, scored) ->
        the fitted weights (the last round's)."""
        setup = self.setup
        weights = np.full(len(setup.policies), 1.0 / len(setup.policies))
        first = given if given is not None else await self._draw(0, self.reference, weights)
        pool = await asyncio.to_thread(self.reward, first)  # (N, M, K)
        samples = await self._samples(first, first, pool, pool, weights, drawn=given is None)
        per_round = setup.resample_every
        result = None
        for index in range(math.ceil(setup.iterations / per_round)):
            if index > 0:
                answers = await self._draw(index, self.vector(weights), weights)
                raw = await asyncio.to_thread(self.reward, answers)
                samples = await self._samples(answers, first, raw, pool, weights, drawn=True)
            first_t = index * per_round
            self.rounds.append(self._round(index, first_t, samples, weights))
            count = min(per_round, setup.iterations - first_t)
            result = await asyncio.to_thread(
                fit_round, samples, count, setup.step, setup.adversary_step, weights, on_iterate, first_t
            )
            weights = np.array(result.weights)
        assert result is not None
        return result

    async def _draw(self, index: int, vector: list[float], centre: np.ndarray) -> list[list[SequenceLogprobs]]:
        """Every prompt's answers from the served mixture at `vector`, each with its expansion
        around `centre` (policy weights; served family); seeds apart from other rounds'."""
        m = self.setup.samples_per_prompt
        base = self.setup.seed + index * self.prompts * m
        around = self.vector(centre) if self.setup.family == "served" else None
        draws = (self.sample(n, m, vector, around, base + n * m) for n in range(self.prompts))
        return list(await asyncio.gather(*draws))

    async def _samples(
        self, answers, pooled, raw: np.ndarray, pool: np.ndarray, centre: np.ndarray, drawn: bool
    ) -> Samples:
        """Log-probs (over tau), the proposal's log-prob (recorded where the fit drew the answers;
        the reference's for given ones), rewards on the fit's scale (a pairwise judge's own win
        probabilities against the pool, `pooled`), and the served family's expansion around
        `centre`."""
        own_pool = answers is pooled
        tau = self.setup.temperature if drawn else 1.0
        logprobs = np.array([[a.policy_logprobs for a in group] for group in answers], dtype=np.float64) / tau
        proposal = np.array(
            [[a.mixtures[0] if drawn else a.logprobs[0] for a in group] for group in answers], dtype=np.float64
        )
        higher = np.array(self.setup.higher)
        if self.setup.scale == "win":
            rewards = win_probabilities(raw, pool, higher, pool_is_samples=own_pool)
        else:
            rewards = standardised_against(raw, pool, higher)
        if any(self.setup.pairwise):
            if self.compare is None:
                raise RuntimeError("a pairwise objective needs the fit's comparer")
            compared = await asyncio.to_thread(self.compare, answers, pooled, own_pool)
            judged = np.array(self.setup.pairwise)
            rewards[:, :, judged] = compared[:, :, judged]
        expansion = self._expansion(answers, centre, tau) if self.setup.family == "served" else None
        return Samples(logprobs, proposal, rewards, expansion)

    @staticmethod
    def _expansion(answers, centre: np.ndarray, tau: float) -> Expansion:
        """Each answer's recorded [sum log Z_t, gradient (C), Hessian (C*C)] restricted to the
        policies (components 1..P) and put in lambda's units (the gradient over tau, the Hessian
        over tau squared)."""
        recorded = np.array([[a.expansion for a in group] for group in answers], dtype=np.float64)
        components, policies = round((recorded.shape[2] - 1) ** 0.5), len(centre)
        span = slice(1, 1 + policies)
        gradient = recorded[:, :, 1 : 1 + components][:, :, span] / tau
        hessian = recorded[:, :, 1 + components :].reshape(*recorded.shape[:2], components, components)
        return Expansion(centre, recorded[:, :, 0], gradient, hessian[:, :, span, span] / tau**2)

    def _round(self, index: int, first_t: int, samples: Samples, weights: np.ndarray) -> Round:
        on_policy = index > 0
        served = samples.rewards.mean(axis=(0, 1)).tolist() if on_policy else None
        sequence = (
            estimate(weights, samples.logprobs, samples.proposal, samples.rewards)[0].tolist() if on_policy else None
        )
        proposal = dict(zip(self.setup.policies, weights.tolist(), strict=True)) if on_policy else None
        return Round(index, first_t, proposal, samples.ess(weights), served, sequence)

    def report(self, objectives: list[str]) -> list[dict]:
        """The rounds as a fit's result shows them, objectives by name."""

        def named(values: list[float] | None) -> dict[str, float] | None:
            return None if values is None else dict(zip(objectives, values, strict=True))

        return [asdict(r) | {"served": named(r.served), "sequence": named(r.sequence)} for r in self.rounds]
