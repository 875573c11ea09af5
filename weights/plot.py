"""The picture of a fit: lambda and each objective's estimated expected score per iteration."""

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

# What a fit's trajectory shows, by method: (the objectives' values, the objective).
LABELS = {
    "mpo": ("E_mixture[s_k] (estimate)", "F(lambda) (estimate)"),
    "judged": ("E_mixture[r_k] (estimate)", "min_k E[r_k] (estimate)"),
    "pairs": ("mean log sigmoid(beta margin)", "min over objectives"),
}


def trajectory_png(
    trajectory: list[dict], policies: list[str], objectives: list[str], method: str, title: str
) -> bytes:
    """trajectory: [{"t", "weights", "objective", "expected"}] (weights by policy, expected by
    objective). MPO's output is the average of its iterates, drawn beside them; the judged and
    pair fits' is their best iterate (weights.saddle), marked."""
    steps = [it["t"] for it in trajectory]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for k, name in enumerate(policies):
        weights = np.array([it["weights"][k] for it in trajectory])
        if method == "mpo":
            line = top.plot(steps, weights, alpha=0.5, label=f"{name} (iterate)")[0]
            average = np.cumsum(weights) / np.arange(1, len(weights) + 1)
            top.plot(steps, average, color=line.get_color(), label=f"{name} (average)")
        else:
            top.plot(steps, weights, label=name)
    for k, name in enumerate(objectives):
        middle.plot(steps, [it["expected"][k] for it in trajectory], label=name)
    values = [it["objective"] for it in trajectory]
    bottom.plot(steps, values, color="black")
    if method != "mpo" and values:
        best = int(np.argmax(values))
        bottom.scatter([steps[best]], [values[best]], color="black", zorder=3, label="output (best iterate)")
        bottom.legend()
    values_label, objective_label = LABELS.get(method, LABELS["mpo"])
    top.set_ylabel("lambda")
    top.set_ylim(-0.02, 1.02)
    top.legend()
    middle.set_ylabel(values_label)
    middle.legend()
    bottom.set_ylabel(objective_label)
    bottom.set_xlabel("iteration")
    top.set_title(title)
    return png_bytes(figure)


def png_bytes(figure) -> bytes:
    """The figure as PNG bytes; the figure is closed (plots are made per request)."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
