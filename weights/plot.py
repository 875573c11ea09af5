"""The picture of a fit: lambda and each objective's estimated expected score per iteration."""

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first


def trajectory_png(trajectory: list[dict], names: list[str], title: str) -> bytes:
    """trajectory: [{"t", "weights", "objective", "expected"}]; names: the objectives."""
    steps = [it["t"] for it in trajectory]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for k, name in enumerate(names):
        weights = np.array([it["weights"][k] for it in trajectory])
        line = top.plot(steps, weights, alpha=0.5, label=f"{name} (iterate)")[0]
        # The fit's output is the average of the iterates: show how it settles.
        top.plot(
            steps,
            np.cumsum(weights) / np.arange(1, len(weights) + 1),
            color=line.get_color(),
            label=f"{name} (average)",
        )
        middle.plot(steps, [it["expected"][k] for it in trajectory], label=name)
    bottom.plot(steps, [it["objective"] for it in trajectory], color="black")
    top.set_ylabel("lambda")
    top.set_ylim(-0.02, 1.02)
    top.legend()
    middle.set_ylabel("E_mixture[s_k] (estimate)")
    middle.legend()
    bottom.set_ylabel("F(lambda) (estimate)")
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
