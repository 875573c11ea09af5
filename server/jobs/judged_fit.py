"""The judged fit's work through the engine: the reference's answers, the rounds of answers from
the served mixture, their rewards on every objective, and the saddle solved on each round.

Round 0 is the reference's answers to every prompt (sampled, or the batch's own responses,
taken as the reference's at temperature 1): they are the pool each answer's win probability is
measured against, and the first round's samples. With `resample_every` R, every R iterations
the mixture is sampled again at the current weights (served, per token, exactly as a request
with those weights), and the next R iterations judge weights on those answers. Every sampled
answer comes with the log-prob of the distribution that drew it (mixer.recording, at the
sampling temperature): the importance weights' denominator.

Answers are sampled at an eval's temperature tau (the manifest's answers.temperature unless
the options say), and what the fit optimises is then the sequence-level product at tau,
exp(sum_i lambda_i a_i / tau) / Z: the policies' log-probs enter divided by tau
(weights.judged is written for tau = 1). Each on-policy round also measures the gap between the
families: the plain mean of its rewards is the served mixture's expectation at its weights, the
importance-weighted estimate at the same weights the sequence-level product's.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import numpy as np

from server.jobs.component_logprobs import SequenceLogprobs
from weights.judged import Samples, fit_round, standardised_against, win_probabilities
from weights.saddle import SaddleIterate, SaddleResult

# (prompt index, samples, weights over all components, seed) -> answers drawn at those weights
Sampler = Callable[[int, int, list[float], int], Awaitable[list[SequenceLogprobs]]]
# answers[prompt][sample] -> raw rewards (prompts, samples, objectives), in a thread
Rewarder = Callable[[list[list[SequenceLogprobs]]], np.ndarray]


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
    scale: str  # 'win' or 'standard'
    iterations: int
    resample_every: int
    samples_per_prompt: int
    temperature: float
    step: float
    adversary_step: float
    seed: int


class JudgedFit:
    def __init__(
        self, setup: JudgedSetup, prompts: int, sample: Sampler, reward: Rewarder, vector, reference: list[float]
    ) -> None:
        self.setup = setup
        self.prompts = prompts
        self.sample, self.reward = sample, reward
        self.vector = vector  # policy weights -> a vector over all components
        self.reference = reference  # the vector of the reference alone
        self.rounds: list[Round] = []

    async def run(
        self, given: list[list[SequenceLogprobs]] | None, on_iterate: Callable[[SaddleIterate], None]
    ) -> SaddleResult:
        """Round 0 is drawn from the reference, or `given` (the batch's responses, scored) ->
        the fitted weights (the last round's)."""
        setup = self.setup
        first = given if given is not None else await self._draw(0, self.reference)
        pool = await asyncio.to_thread(self.reward, first)  # (N, M, K)
        samples = self._samples(first, pool, pool, drawn=given is None, own_pool=True)
        per_round = setup.resample_every or setup.iterations
        weights = np.full(len(setup.policies), 1.0 / len(setup.policies))
        result = None
        for index in range(math.ceil(setup.iterations / per_round)):
            if index > 0:
                answers = await self._draw(index, self.vector(weights))
                raw = await asyncio.to_thread(self.reward, answers)
                samples = self._samples(answers, raw, pool, drawn=True, own_pool=False)
            first_t = index * per_round
            self.rounds.append(self._round(index, first_t, samples, weights))
            count = min(per_round, setup.iterations - first_t)
            result = await asyncio.to_thread(
                fit_round, samples, count, setup.step, setup.adversary_step, weights, on_iterate, first_t
            )
            weights = np.array(result.weights)
        assert result is not None
        return result

    async def _draw(self, index: int, vector: list[float]) -> list[list[SequenceLogprobs]]:
        """Every prompt's answers from the served mixture at `vector`; seeds apart from other rounds'."""
        m = self.setup.samples_per_prompt
        base = self.setup.seed + index * self.prompts * m
        return list(await asyncio.gather(*(self.sample(n, m, vector, base + n * m) for n in range(self.prompts))))

    def _samples(self, answers, raw: np.ndarray, pool: np.ndarray, drawn: bool, own_pool: bool) -> Samples:
        """Log-probs (over tau), the proposal's log-prob (recorded where the fit drew the answers;
        the reference's for given ones) and rewards on the fit's scale."""
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
        return Samples(logprobs, proposal, rewards)

    def _round(self, index: int, first_t: int, samples: Samples, weights: np.ndarray) -> Round:
        on_policy = index > 0
        served = samples.rewards.mean(axis=(0, 1)).tolist() if on_policy else None
        sequence = samples.estimate(weights)[0].tolist() if on_policy else None
        proposal = dict(zip(self.setup.policies, weights.tolist(), strict=True)) if on_policy else None
        return Round(index, first_t, proposal, samples.ess(weights), served, sequence)

    def report(self, objectives: list[str]) -> list[dict]:
        """The rounds as a fit's result shows them, objectives by name."""

        def named(values: list[float] | None) -> dict[str, float] | None:
            return None if values is None else dict(zip(objectives, values, strict=True))

        return [asdict(r) | {"served": named(r.served), "sequence": named(r.sequence)} for r in self.rounds]
