"""The study's figure: the Min (worst objective's win rate against the reference, 95%
bootstrap interval) per candidate under the training and the held-out judges, the best fit's
paired difference of Min from every other candidate, and the three-objective Pareto view: every
pair of objectives' win rates, the candidates on the three-objective Pareto front (of mean
rewards) in red."""

from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np

from weights.plot import png_bytes  # also selects matplotlib's Agg backend

COLOURS = {
    "reference": "grey",
    "policy": "tab:blue",
    "mixture": "tab:cyan",
    "fit": "tab:green",
    "soup": "tab:orange",
    "retrained": "tab:purple",
}


def _intervals(summaries: list[dict]) -> np.ndarray:
    return np.array(
        [[100 * (s["mean"] - s["low"]) for s in summaries], [100 * (s["high"] - s["mean"]) for s in summaries]]
    )


def study_png(objectives: list[str], rows: list[dict], title: str) -> bytes:
    pairs = list(combinations(objectives, 2))
    figure, axes = plt.subplots(1, 2 + len(pairs), figsize=(13 + 4.5 * len(pairs), 6.5), squeeze=False)
    bars, gaps = axes[0][0], axes[0][1]
    y = np.arange(len(rows))[::-1]
    for offset, judged, hatch in ((0.2, None, ""), (-0.2, "held_out", "//")):
        mins = [(r if judged is None else r["judges"][judged])["min"] for r in rows]
        drawn = bars.barh(y + offset, [100 * m["mean"] for m in mins], height=0.38, xerr=_intervals(mins), capsize=2)
        for patch, row in zip(drawn, rows, strict=True):
            patch.set(facecolor=COLOURS[row["kind"]], hatch=hatch, edgecolor="black", linewidth=0.5)
        drawn.set_label("held-out judges (hatched)" if hatch else "training judges")
    bars.axvline(50, color="grey", linestyle="--", linewidth=1)
    bars.set_yticks(y, [f"{r['label']} ({r['min']['objective']})" for r in rows], fontsize=8)
    bars.set_xlim(0, 100)
    bars.set_xlabel("Min: worst objective's win rate vs the reference (%), 95% bootstrap")
    bars.set_title("Min per candidate")
    bars.legend(fontsize=7, loc="lower right")
    compared = [r for r in rows if r["best_minus_this"] is not None]
    cy = np.arange(len(compared))[::-1]
    for offset, judged, colour in ((0.15, None, "tab:green"), (-0.15, "held_out", "tab:olive")):
        differences = [(r if judged is None else r["judges"][judged])["best_minus_this"] for r in compared]
        label = "training judges" if judged is None else "held-out judges"
        means = [100 * d["mean"] for d in differences]
        gaps.errorbar(means, cy + offset, xerr=_intervals(differences), fmt="o", color=colour, capsize=3, label=label)
    gaps.axvline(0, color="grey", linestyle="--", linewidth=1)
    gaps.set_yticks(cy, [r["label"] for r in compared], fontsize=8)
    gaps.set_xlabel("best fit's Min minus this candidate's (points), paired 95% bootstrap")
    gaps.set_title("The best fit against each candidate (right of 0: ahead)")
    gaps.legend(fontsize=7)
    for axis, (a, b) in zip(axes[0][2:], pairs, strict=True):
        for r in rows:
            x, yy = (100 * r["objectives"][o]["win_rate"]["mean"] for o in (a, b))
            axis.scatter(x, yy, color="tab:red" if r["pareto"] else COLOURS[r["kind"]], zorder=3)
            axis.annotate(r["name"], (x, yy), textcoords="offset points", xytext=(3, 3), fontsize=7)
        axis.axhline(50, color="grey", linestyle=":", linewidth=1)
        axis.axvline(50, color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel(f"win {a} (%)")
        axis.set_ylabel(f"win {b} (%)")
        axis.set_title(f"{a} vs {b} (red: on the 3-objective Pareto front)", fontsize=9)
    figure.suptitle(title)
    return png_bytes(figure)
