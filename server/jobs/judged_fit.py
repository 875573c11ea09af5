"""The judged fit's work through the engine: the reference's answers, the rounds of answers from
the served mixture, their rewards on every objective, and the saddle solved on each round.

Round 0 is the reference's answers to every prompt (sampled, or the batch's own responses,
taken as the reference's): they are the pool each answer's win probability is measured
against, and the first round's samples. With `resample_every` R, every R iterations the
mixture is sampled again at the current weights (served, per token, exactly as a request with
those weights), each answer with its log-prob under that mixture, and the next R iterations
judge weights on those answers (importance weights against the mixture that drew them). Each
on-policy round also measures the gap between the two families (weights.judged): the plain
mean of its rewards is the served mixture's expectation at its weights, the importance-weighted
estimate at the same weights the sequence-level product's.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import numpy as np

from server.jobs.component_logprobs import SequenceLogprobs
from weights.judged import Samples, fit_round, standardised_against, win_probabilities
from weights.saddle import SaddleIterate, SaddleResult

# (prompt index, samples, weights over all components or None for the reference, seed) -> answers
Sampler = Callable[[int, int, list[float] | None, int], Awaitable[list[SequenceLogprobs]]]
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
    step: float
    adversary_step: float
    seed: int


class JudgedFit:
    def __init__(self, setup: JudgedSetup, prompts: int, sample: Sampler, reward: Rewarder, vector) -> None:
        self.setup = setup
        self.prompts = prompts
        self.sample, self.reward = sample, reward
        self.vector = vector  # policy weights -> a vector over all components
        self.rounds: list[Round] = []

    async def run(
        self, reference: list[list[SequenceLogprobs]], on_iterate: Callable[[SaddleIterate], None]
    ) -> SaddleResult:
        """The reference's answers by prompt (round 0) -> the fitted weights (the last round's)."""
        setup = self.setup
        pool = await asyncio.to_thread(self.reward, reference)  # (N, M, K)
        samples = self._samples(reference, pool, pool, None)
        per_round = setup.resample_every or setup.iterations
        rounds = math.ceil(setup.iterations / per_round)
        weights = np.full(len(setup.policies), 1.0 / len(setup.policies))
        result = None
        for index in range(rounds):
            if index > 0:
                drawn = await self._draw(index, weights)
                samples = self._samples(drawn, await asyncio.to_thread(self.reward, drawn), pool, weights)
            first_t = index * per_round
            count = min(per_round, setup.iterations - first_t)
            self.rounds.append(self._round(index, first_t, samples, weights))
            result = await asyncio.to_thread(
                fit_round, samples, count, setup.step, setup.adversary_step, weights, on_iterate, first_t
            )
            weights = np.array(result.weights)
        assert result is not None
        return result

    async def _draw(self, index: int, weights: np.ndarray) -> list[list[SequenceLogprobs]]:
        """Every prompt's answers from the served mixture at `weights`; seeds apart from earlier rounds'."""
        m, vector = self.setup.samples_per_prompt, self.vector(weights)
        base = self.setup.seed + index * self.prompts * m
        return list(await asyncio.gather(*(self.sample(n, m, vector, base + n * m) for n in range(self.prompts))))

    def _samples(self, answers, raw: np.ndarray, pool: np.ndarray, proposal: np.ndarray | None) -> Samples:
        """Log-probs, the proposal's log-prob (the reference's, or the recorded mixture's) and
        rewards on the fit's scale."""
        logprobs = np.array([[a.policy_logprobs for a in group] for group in answers], dtype=np.float64)
        if proposal is None:
            drawn = np.array([[a.logprobs[0] for a in group] for group in answers], dtype=np.float64)
        else:
            drawn = np.array([[a.mixtures[0] for a in group] for group in answers], dtype=np.float64)
        higher = np.array(self.setup.higher)
        if self.setup.scale == "win":
            rewards = win_probabilities(raw, pool, higher, pool_is_samples=proposal is None)
        else:
            rewards = standardised_against(raw, pool, higher)
        return Samples(logprobs, drawn, rewards)

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
