"""The statistics of an evaluation: mean rewards with 95% intervals, win rates against the
reference (ties count half) and the Min over objectives, the paper's headline column.

On a length judge (a scorer with `length`), an answer cut at the token limit has no length of
its own: its words measure words per token. Win rates then take it as longer than any answer
that ended (censor_cut): two cut answers tie, a cut answer loses to every one that ended. In
tokens that is exact (a cut answer has the limit's tokens and more to come; an ended one has at
most as many).

Rewards come grouped by prompt: rewards[prompt][sample]. Candidates are compared pair by pair
(same prompt, same sample seed). Intervals treat prompts as the independent units: each
prompt's samples are averaged first, then the 95% interval is mean +- 1.96 s / sqrt(prompts)
(normal approximation), so several samples of one prompt do not pass for independent data.
"""

import math
from collections.abc import Mapping, Sequence

from scorers.base import Direction

Z_95 = 1.959963984540054
Grouped = Sequence[Sequence[float]]  # [prompt][sample]


def mean_interval(values: Sequence[float]) -> dict[str, float]:
    """{"mean", "low", "high", "n"}: the mean and its 95% interval (zero width for n < 2)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    half = Z_95 * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def prompt_means(grouped: Grouped) -> list[float]:
    """Each prompt's mean over its samples."""
    if any(len(group) == 0 for group in grouped):
        raise ValueError("every prompt needs at least one sample")
    return [sum(group) / len(group) for group in grouped]


def reward_summary(rewards: Grouped) -> dict[str, float]:
    """Mean reward with its 95% interval over prompts."""
    return mean_interval(prompt_means(rewards))


def outcome(candidate: float, reference: float, direction: Direction) -> float:
    """1 if the candidate's reward is better, 0 if worse, 1/2 for a tie."""
    if candidate == reference:
        return 0.5
    better = candidate > reference if direction == "higher" else candidate < reference
    return 1.0 if better else 0.0


def censor_cut(rewards: Grouped, cut: Sequence[Sequence[bool]], direction: Direction) -> list[list[float]]:
    """A length judge's rewards as win rates compare them: every cut answer the worst value
    there is (minus infinity where higher is better), so that cut answers tie among themselves
    and lose to every answer that ended."""
    worst = -math.inf if direction == "higher" else math.inf
    if len(cut) != len(rewards) or any(len(c) != len(r) for c, r in zip(cut, rewards, strict=True)):
        raise ValueError("every answer needs its cut flag")
    return [[worst if c else r for r, c in zip(rs, cs, strict=True)] for rs, cs in zip(rewards, cut, strict=True)]


def wins_per_prompt(candidate: Grouped, reference: Grouped, direction: Direction) -> list[float]:
    """Each prompt's share of samples where the candidate beats the reference (same sample
    seed), ties half."""
    if len(candidate) != len(reference) or any(len(c) != len(r) for c, r in zip(candidate, reference, strict=True)):
        raise ValueError("candidate and reference must have rewards for the same prompts and samples")
    outcomes = [
        [outcome(c, r, direction) for c, r in zip(cs, rs, strict=True)]
        for cs, rs in zip(candidate, reference, strict=True)
    ]
    return prompt_means(outcomes)


def share_interval(per_prompt: Sequence[float]) -> dict[str, float]:
    """The mean of per-prompt shares with its 95% interval over prompts, clipped to [0, 1]."""
    summary = mean_interval(per_prompt)
    return summary | {"low": max(0.0, summary["low"]), "high": min(1.0, summary["high"])}


def paired_difference(per_prompt: Sequence[float], other: Sequence[float]) -> dict[str, float]:
    """The mean of per-prompt differences with its 95% interval over prompts: far narrower than
    either mean's interval where the two sides move together prompt by prompt."""
    return mean_interval([a - b for a, b in zip(per_prompt, other, strict=True)])


def win_rate(candidate: Grouped, reference: Grouped, direction: Direction) -> dict[str, float]:
    """Share of pairs (same prompt and sample) where the candidate beats the reference, ties
    half; 95% interval over prompts, clipped to [0, 1]."""
    return share_interval(wins_per_prompt(candidate, reference, direction))


def win_rate_difference(
    candidate: Grouped, other: Grouped, reference: Grouped, direction: Direction
) -> dict[str, float]:
    """The candidate's win rate minus another candidate's, both against the same reference
    answers (the same sample seeds), paired prompt by prompt."""
    return paired_difference(
        wins_per_prompt(candidate, reference, direction), wins_per_prompt(other, reference, direction)
    )


def min_over_objectives(win_rates: Mapping[str, Mapping[str, float]]) -> dict:
    """{"objective", "win_rate"}: the worst-served objective and its win rate."""
    if not win_rates:
        raise ValueError("no objectives")
    worst = min(win_rates, key=lambda name: win_rates[name]["mean"])
    return {"objective": worst, "win_rate": win_rates[worst]["mean"]}


def pareto_front(points: Mapping[str, Sequence[float]], directions: Sequence[Direction]) -> list[str]:
    """The names whose points no other point dominates (at least as good on every objective,
    better on one), in the given directions."""

    def as_good(a: float, b: float, direction: Direction) -> bool:
        return a >= b if direction == "higher" else a <= b

    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(as_good(x, y, d) for x, y, d in zip(a, b, directions, strict=True)) and any(
            x != y for x, y in zip(a, b, strict=True)
        )

    return [
        name for name, p in points.items() if not any(dominates(q, p) for other, q in points.items() if other != name)
    ]
