"""An evaluation's result from its rewards: per candidate and objective the mean reward and the
win rate against the reference, then the Min over objectives; compared with one candidate
(`against`), the paired differences of each win rate and of the Min (evaluation.bootstrap)."""

from collections.abc import Mapping

import numpy as np

from evaluation.bootstrap import min_difference
from evaluation.stats import (
    Grouped,
    min_over_objectives,
    reward_summary,
    win_rate,
    win_rate_difference,
    wins_per_prompt,
)
from scorers.base import Direction


def summarise_candidates(
    rewards: Mapping[str, Mapping[str, Grouped]],
    reference: str,
    directions: Mapping[str, Direction],
    against: str | None = None,
) -> dict[str, dict]:
    """rewards[candidate][objective][prompt][sample] -> {candidate: {"objectives": {objective:
    {"reward", "win_rate"} and, with `against` (a candidate), "win_rate_minus_against"}, "min":
    {"objective", "win_rate"}, with `against` "min_minus_against"}}, in the candidates' order."""
    for role, name in (("the reference", reference), ("the candidate compared with", against)):
        if name is not None and name not in rewards:
            raise ValueError(f"{role} {name!r} must be among the candidates")
    summary = {}
    for name, by_objective in rewards.items():
        objectives = {
            objective: {
                "reward": reward_summary(grouped),
                "win_rate": win_rate(grouped, rewards[reference][objective], directions[objective]),
            }
            | (
                {
                    "win_rate_minus_against": win_rate_difference(
                        grouped, rewards[against][objective], rewards[reference][objective], directions[objective]
                    )
                }
                if against
                else {}
            )
            for objective, grouped in by_objective.items()
        }
        summary[name] = {
            "objectives": objectives,
            "min": min_over_objectives({o: v["win_rate"] for o, v in objectives.items()}),
        }
    if against:

        def wins(candidate: str) -> np.ndarray:  # (prompts, objectives)
            return np.array(
                [
                    wins_per_prompt(grouped, rewards[reference][objective], directions[objective])
                    for objective, grouped in rewards[candidate].items()
                ]
            ).T

        for name in rewards:
            summary[name]["min_minus_against"] = min_difference(wins(name), wins(against))
    return summary
