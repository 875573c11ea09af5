"""The pair eval: every candidate's margin on every preference pair, from one forced decoding of
each answer.

Nothing is sampled: each pair's two answers are decoded once with every component recorded, and
with the served log-prob of every candidate that is a mixture (mixer.recording), so a candidate's
margin is exact for what it serves (the per-token mixture), not an estimate. A component (a
policy, a soup, the reference) serves its own log-probs. For a mixture of the policies the
sequence-level margin lambda . d (what the pair fit maximises, weights.pairs) is reported beside
it, and their difference: the per-prefix normalisers the served mixture adds.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluation.pairs import grouped_by_prompt, summarise_pairs
from server.jobs.component_logprobs import ComponentLogprobs
from server.jobs.pair_scores import PreparedPair, ScoredPair, score_pairs
from weights.pairs import margins


@dataclass(frozen=True)
class PairCandidate:
    name: str
    vector: list[float]  # weights over all components, reference first


def one_hot(vector: list[float]) -> int | None:
    nonzero = [i for i, w in enumerate(vector) if w != 0]
    return nonzero[0] if len(nonzero) == 1 else None


class PairEval:
    def __init__(self, candidates: list[PairCandidate], policies: int) -> None:
        self.candidates = candidates
        self.policies = policies
        # the candidates whose served log-probs must be recorded: the mixtures
        self.mixtures: list[list[float]] = []
        for c in candidates:
            if one_hot(c.vector) is None and c.vector not in self.mixtures:
                self.mixtures.append(c.vector)

    async def score(
        self, logprobs: ComponentLogprobs, pairs: list[PreparedPair], in_flight: int, done: Callable[[int], None]
    ) -> list[ScoredPair]:
        return await score_pairs(logprobs, pairs, self.mixtures or None, in_flight, done)

    def served(self, scored: list[ScoredPair]) -> dict[str, np.ndarray]:
        """Each candidate's margin on every pair: (pairs,)."""

        def margin(candidate: PairCandidate) -> np.ndarray:
            component = one_hot(candidate.vector)
            column = None if component is not None else self.mixtures.index(candidate.vector)

            def logprob(answer) -> float:
                return answer.logprobs[component] if column is None else answer.mixtures[column]

            return np.array(
                [
                    (logprob(p.chosen) - p.chosen.logprobs[0]) - (logprob(p.rejected) - p.rejected.logprobs[0])
                    for p in scored
                ]
            )

        return {c.name: margin(c) for c in self.candidates}

    def linear(self, scored: list[ScoredPair]) -> dict[str, np.ndarray | None]:
        """The sequence-level mixture's margin lambda . d for candidates that mix the policies only."""
        width = 1 + self.policies
        chosen = np.array([p.chosen.logprobs[:width] for p in scored], dtype=np.float64)
        rejected = np.array([p.rejected.logprobs[:width] for p in scored], dtype=np.float64)
        d = margins(chosen, rejected)  # (pairs, P)
        result: dict[str, np.ndarray | None] = {}
        for c in self.candidates:
            vector = np.array(c.vector)
            on_policies = vector[0] == 0 and not vector[width:].any()
            result[c.name] = d @ vector[1:width] if on_policies else None
        return result

    def result(
        self, pairs: list[PreparedPair], scored: list[ScoredPair], objectives: list[str], against: str | None = None
    ) -> dict:
        served, linear = self.served(scored), self.linear(scored)
        prompts = [tuple(p.prompt) for p in pairs]

        def grouped(values: np.ndarray, objective: str) -> list[list[float]]:
            keep = [n for n, p in enumerate(pairs) if p.objective == objective]
            return grouped_by_prompt([float(values[n]) for n in keep], [prompts[n] for n in keep])

        summary = summarise_pairs(
            {name: {o: grouped(m, o) for o in objectives} for name, m in served.items()},
            {name: None if m is None else {o: grouped(m, o) for o in objectives} for name, m in linear.items()},
            against,
        )
        counts = {o: sum(p.objective == o for p in pairs) for o in objectives}
        return {"summary": summary, "pairs": counts, "served": served, "linear": linear}
