"""The picture of an evaluation: win rate against the reference per objective (bars with 95%
intervals) and, for two or more objectives, mean rewards of the first two with the Pareto front;
for a pair eval, preference accuracy and mean margin per objective."""

import matplotlib.pyplot as plt
import numpy as np

from evaluation.stats import pareto_front
from weights.plot import png_bytes  # also selects matplotlib's Agg backend


def eval_png(result: dict, title: str) -> bytes:
    objectives = list(result["objectives"])
    candidates = result["candidates"]
    names = [c["name"] for c in candidates]
    scatter = len(objectives) >= 2
    figure, axes = plt.subplots(1, 2 if scatter else 1, figsize=(13 if scatter else 7, 5), squeeze=False)
    bars = axes[0][0]
    _bars(bars, candidates, objectives, "win_rate", 100)
    bars.axhline(50, color="grey", linestyle="--", linewidth=1)
    x = np.arange(len(candidates))
    bars.scatter(
        x, [100 * c["min"]["win_rate"] for c in candidates], color="black", marker="_", s=400, label="Min", zorder=3
    )
    bars.set_xticks(x, names, rotation=30, ha="right")
    bars.set_ylim(0, 100)
    bars.set_ylabel(f"win rate vs {result['reference']} (%)")
    bars.legend()
    bars.set_title("win rate per objective (95% intervals)")
    if scatter:
        _pareto_scatter(axes[0][1], result, objectives[:2])
    figure.suptitle(title)
    return png_bytes(figure)


def _bars(axis, candidates: list[dict], objectives: list[str], key: str, scale: float) -> None:
    """One bar per candidate and objective: candidate["objectives"][objective][key] with its 95% interval."""
    width = 0.8 / len(objectives)
    x = np.arange(len(candidates))
    for k, objective in enumerate(objectives):
        stats = [c["objectives"][objective][key] for c in candidates]
        means = np.array([scale * s["mean"] for s in stats])
        errors = np.array(
            [[scale * (s["mean"] - s["low"]) for s in stats], [scale * (s["high"] - s["mean"]) for s in stats]]
        )
        axis.bar(x + (k - (len(objectives) - 1) / 2) * width, means, width, yerr=errors, capsize=3, label=objective)


def pair_eval_png(result: dict, title: str) -> bytes:
    """A pair eval: each candidate's preference accuracy per objective with the Min, and its mean margin."""
    objectives, candidates = result["objectives"], result["candidates"]
    names = [c["name"] for c in candidates]
    x = np.arange(len(candidates))
    figure, (accuracy, margin) = plt.subplots(1, 2, figsize=(13, 5))
    _bars(accuracy, candidates, objectives, "accuracy", 100)
    accuracy.axhline(50, color="grey", linestyle="--", linewidth=1)
    accuracy.scatter(
        x, [100 * c["min"]["accuracy"] for c in candidates], color="black", marker="_", s=400, label="Min", zorder=3
    )
    accuracy.set_ylim(0, 100)
    accuracy.set_ylabel("preference accuracy (%)")
    accuracy.set_title("chosen preferred to rejected (95% intervals)")
    _bars(margin, candidates, objectives, "margin", 1)
    margin.axhline(0, color="grey", linewidth=1)
    margin.set_ylabel("mean margin (nats of log pi / pi_ref)")
    margin.set_title("implicit-reward margin, chosen minus rejected")
    for axis in (accuracy, margin):
        axis.set_xticks(x, names, rotation=30, ha="right")
        axis.legend()
    figure.suptitle(title)
    return png_bytes(figure)


def _pareto_scatter(axis, result: dict, objectives: list[str]) -> None:
    candidates = result["candidates"]
    directions = [result["objectives"][o]["direction"] for o in objectives]
    points = {c["name"]: [c["objectives"][o]["reward"]["mean"] for o in objectives] for c in candidates}
    front = pareto_front(points, directions)
    for name, (a, b) in points.items():
        axis.scatter(a, b, color="tab:red" if name in front else "tab:blue", zorder=3)
        axis.annotate(name, (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ordered = sorted((points[n] for n in front), key=lambda p: p[0])
    if len(ordered) > 1:
        axis.plot(
            [p[0] for p in ordered], [p[1] for p in ordered], color="tab:red", linestyle="--", label="Pareto front"
        )
        axis.legend()
    for setter, objective, direction in (
        (axis.set_xlabel, objectives[0], directions[0]),
        (axis.set_ylabel, objectives[1], directions[1]),
    ):
        setter(f"mean {objective} ({result['objectives'][objective]['units']}; {direction} is better)")
    axis.set_title("mean rewards")
