"""The statistics of a pair eval: per candidate and objective, the preference accuracy and the mean
margin of its implicit reward between chosen and rejected answers, with 95% intervals, and the
Min of the accuracies over objectives. Pure Python.

A candidate's margin on a pair is (log pi(chosen) - log pi_ref(chosen)) - (log pi(rejected) -
log pi_ref(rejected)), in nats: its implicit reward r = beta log(pi / pi_ref) over beta, so it
does not depend on a beta the policies need not share. It prefers the chosen answer when the
margin is positive (accuracy 1, a tie 1/2, as win rates count ties). Pairs come grouped by
prompt: a prompt's pairs are averaged first, so several pairs of one prompt do not pass for
independent data (evaluation.stats). Candidates judged on the same pairs are compared paired:
one candidate's accuracy minus another's, pair by pair, has a far narrower interval than
either accuracy alone when the two agree on most pairs.
"""

from collections.abc import Mapping, Sequence

from evaluation.stats import Grouped, paired_difference, reward_summary, share_interval


def preference(margin: float) -> float:
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def accuracies(served: Grouped) -> list[float]:
    """Each prompt's share of pairs whose chosen answer the margins prefer, ties half."""
    return [sum(preference(m) for m in group) / len(group) for group in served]


def pair_objective(served: Grouped, linear: Grouped | None) -> dict:
    """served[prompt][pair] margins of the served model; linear: the sequence-level mixture's
    margins (lambda . d) where the candidate is a mixture of the policies, else None."""
    result = {
        "accuracy": share_interval(accuracies(served)),
        "margin": reward_summary(served),
        "linear_margin": None,
        "served_minus_linear": None,
    }
    if linear is not None:
        gap = [[s - lin for s, lin in zip(ss, ls, strict=True)] for ss, ls in zip(served, linear, strict=True)]
        result |= {"linear_margin": reward_summary(linear), "served_minus_linear": reward_summary(gap)}
    return result


def accuracy_difference(served: Grouped, against: Grouped) -> dict[str, float]:
    """One candidate's accuracy minus another's on the same pairs, paired prompt by prompt."""
    if [len(g) for g in served] != [len(g) for g in against]:
        raise ValueError("both candidates need margins for the same pairs")
    return paired_difference(accuracies(served), accuracies(against))


def summarise_pairs(
    served: Mapping[str, Mapping[str, Grouped]],
    linear: Mapping[str, Mapping[str, Grouped] | None],
    against: str | None = None,
) -> dict[str, dict]:
    """served[candidate][objective][prompt][pair] -> {candidate: {"objectives": {objective:
    pair_objective(...) and, with `against` (a candidate), "accuracy_minus_against"}, "min":
    {"objective", "accuracy"}}}, in the candidates' order."""
    summary = {}
    for name, by_objective in served.items():
        objectives = {
            objective: pair_objective(grouped, None if (own := linear.get(name)) is None else own[objective])
            | ({"accuracy_minus_against": accuracy_difference(grouped, served[against][objective])} if against else {})
            for objective, grouped in by_objective.items()
        }
        worst = min(objectives, key=lambda o: objectives[o]["accuracy"]["mean"])
        summary[name] = {
            "objectives": objectives,
            "min": {"objective": worst, "accuracy": objectives[worst]["accuracy"]["mean"]},
        }
    return summary


def grouped_by_prompt(values: Sequence[float], prompts: Sequence[object]) -> list[list[float]]:
    """Values of pairs grouped by their prompt (any hashable key), in order of first appearance."""
    groups: dict[object, list[float]] = {}
    for value, prompt in zip(values, prompts, strict=True):
        groups.setdefault(prompt, []).append(value)
    return list(groups.values())
