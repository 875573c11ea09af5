"""Preference pairs for the retrained baselines: what a user who retrains one policy for all
objectives at once, instead of mixing the policies, would train on. Pure Python.

Every reference sample's objective scores are standardised over all the reference samples
(mean 0, deviation 1 per objective: VADER's [-1, 1] and minus a word count of about -100 are
otherwise not comparable), then combined into one score per answer:

- linear: the sum of the standardised scores (the MORLHF stand-in: one scalarised reward);
- max-min: their minimum (the MaxMin-RLHF stand-in: the worst-served objective's reward).

Pairs are then made within each prompt's answers exactly as for the policies
(demo.smollm2.build.ranked_pairs): a clear gap in the combined score, a real answer chosen.
"""

import statistics
from collections.abc import Mapping, Sequence

from demo.smollm2.build import ObjectiveSetup, ranked_pairs
from demo.smollm2.sampling import Answer

KINDS = ("linear", "maxmin")
Scores = Sequence[Sequence[Mapping[str, float]]]  # [prompt][answer] -> {objective: score}


def standardisation(scores: Scores, objectives: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per objective, (mean, standard deviation) over every answer; a constant objective gets
    deviation 1 (its standardised scores are then all 0)."""
    stats = {}
    for objective in objectives:
        values = [row[objective] for group in scores for row in group]
        spread = statistics.pstdev(values)
        stats[objective] = (statistics.fmean(values), spread if spread > 0 else 1.0)
    return stats


def combined_scores(scores: Scores, objectives: Sequence[str], kind: str) -> list[list[float]]:
    """Each answer's linear (sum) or maxmin (minimum) of its standardised objective scores."""
    if kind not in KINDS:
        raise ValueError(f"unknown baseline kind {kind!r}; known: {', '.join(KINDS)}")
    stats = standardisation(scores, objectives)
    combine = sum if kind == "linear" else min
    return [[combine((row[o] - stats[o][0]) / stats[o][1] for o in objectives) for row in group] for group in scores]


def baseline_pairs(
    groups: list[list[Answer]],
    texts: list[list[str]],
    scores: Scores,
    objectives: Sequence[str],
    kind: str,
    setup: ObjectiveSetup,
) -> list[tuple[Answer, Answer]]:
    return ranked_pairs(groups, texts, combined_scores(scores, objectives, kind), setup)
