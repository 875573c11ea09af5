"""The study's figure: the Min (worst objective's win rate against the reference, 95%
interval) per candidate, and the three-objective Pareto view: every pair of objectives' win
rates, the candidates on the three-objective Pareto front (of mean rewards) in red."""

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


def study_png(objectives: list[str], rows: list[dict], title: str) -> bytes:
    pairs = list(combinations(objectives, 2))
    figure, axes = plt.subplots(1, 1 + len(pairs), figsize=(6 + 4.5 * len(pairs), 6), squeeze=False)
    bars = axes[0][0]
    y = np.arange(len(rows))[::-1]
    means = np.array([100 * r["min"]["mean"] for r in rows])
    errors = np.array(
        [
            [100 * (r["min"]["mean"] - r["min"]["low"]) for r in rows],
            [100 * (r["min"]["high"] - r["min"]["mean"]) for r in rows],
        ]
    )
    bars.barh(y, means, xerr=errors, capsize=3, color=[COLOURS[r["kind"]] for r in rows])
    bars.axvline(50, color="grey", linestyle="--", linewidth=1)
    bars.set_yticks(y, [f"{r['label']} ({r['min']['objective']})" for r in rows], fontsize=8)
    bars.set_xlim(0, 100)
    bars.set_xlabel("Min: worst objective's win rate vs the reference (%), 95% interval")
    bars.set_title("Min per candidate")
    for axis, (a, b) in zip(axes[0][1:], pairs, strict=True):
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
