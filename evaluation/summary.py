"""An evaluation's result from its rewards: per candidate and objective the mean reward and the
win rate against the reference, then the Min over objectives; compared with one candidate
(`against`), the paired differences of each win rate and of the Min (evaluation.bootstrap)."""

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from evaluation.bootstrap import min_difference, min_interval
from evaluation.stats import (
    Grouped,
    censor_cut,
    min_over_objectives,
    paired_difference,
    prompt_means,
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
    cut: Mapping[str, Sequence[Sequence[bool]]] | None = None,
    lengths: Collection[str] = (),
    pairwise: Collection[str] = (),
) -> dict[str, dict]:
    """rewards[candidate][objective][prompt][sample] -> {candidate: {"objectives": {objective:
    {"reward", "win_rate"} and, with `against` (a candidate), "win_rate_minus_against"}, "min":
    {"objective", "win_rate"}, "min_interval" (its bootstrap over prompts), with `against`
    "min_minus_against"}}, in the candidates' order.
    With `cut` (cut[candidate][prompt][sample]: the answer stopped at the token limit), the win
    rates on the objectives in `lengths` count cut answers as longest (evaluation.stats). On the
    objectives in `pairwise` the rewards are already outcomes against the reference's answer (a
    pairwise judge's: 1 win, 0 loss, 1/2 tie), so they are the wins."""
    for role, name in (("the reference", reference), ("the candidate compared with", against)):
        if name is not None and name not in rewards:
            raise ValueError(f"{role} {name!r} must be among the candidates")

    def judged(name: str, objective: str) -> Grouped:
        grouped = rewards[name][objective]
        if cut is None or objective not in lengths:
            return grouped
        return censor_cut(grouped, cut[name], directions[objective])

    # Each candidate's per-prompt wins, computed once: its win rates, and the paired comparisons.
    def won(name: str, objective: str) -> list[float]:
        if objective in pairwise:
            return prompt_means(rewards[name][objective])
        return wins_per_prompt(judged(name, objective), judged(reference, objective), directions[objective])

    wins = {name: {o: won(name, o) for o in by_objective} for name, by_objective in rewards.items()}
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
        mine = np.array([wins[name][o] for o in by_objective]).T  # (prompts, objectives)
        summary[name] = {
            "objectives": objectives,
            "min": min_over_objectives({o: v["win_rate"] for o, v in objectives.items()}),
            "min_interval": min_interval(mine),
        }
        if against:  # the same prompts in the same rows
            theirs = np.array([wins[against][o] for o in by_objective]).T
            summary[name]["min_minus_against"] = min_difference(mine, theirs)
    return summary
