"""An evaluation's result from its rewards: per candidate and objective the mean reward and the
win rate against the reference, then the Min over objectives; compared with one candidate
(`against`), the paired differences of each win rate and of the Min (evaluation.bootstrap)."""

from collections.abc import Mapping

import numpy as np

from evaluation.bootstrap import min_difference
from evaluation.stats import (
    Grouped,
    min_over_objectives,
    paired_difference,
    reward_summary,
    share_interval,
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
    # Each candidate's per-prompt wins, computed once: its win rates, and the paired comparisons.
    wins = {
        name: {o: wins_per_prompt(grouped, rewards[reference][o], directions[o]) for o, grouped in by_objective.items()}
        for name, by_objective in rewards.items()
    }
    summary = {}
    for name, by_objective in rewards.items():
        objectives = {
            objective: {"reward": reward_summary(grouped), "win_rate": share_interval(wins[name][objective])}
            | (
                {"win_rate_minus_against": paired_difference(wins[name][objective], wins[against][objective])}
                if against
                else {}
            )
            for objective, grouped in by_objective.items()
        }
        summary[name] = {
            "objectives": objectives,
            "min": min_over_objectives({o: v["win_rate"] for o, v in objectives.items()}),
        }
        if against:  # (prompts, objectives) of both, the same prompts in the same rows
            mine, theirs = ([side[o] for o in by_objective] for side in (wins[name], wins[against]))
            summary[name]["min_minus_against"] = min_difference(np.array(mine).T, np.array(theirs).T)
    return summary
