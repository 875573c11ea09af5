"""The bootstrap of a Min, and the paired bootstrap of a difference of Min between two
candidates. Pure numpy.

The Min is a minimum of per-objective means, so its difference between two candidates has no
normal interval of its own: the objective that binds can change from one resample to the next.
Both candidates answered the same prompts with the same seeds, so prompts are resampled with
replacement, the same prompts for both (a prompt's samples stay together: each prompt enters
as its own mean), and the difference of the two Mins is taken on each resample; the interval is
its 2.5th and 97.5th percentiles (percentile bootstrap, seeded, so a table is reproducible).
A Min alone is resampled the same way. Every call with one seed draws the same resamples, so
intervals in one table come from one set of resamples.
"""

import numpy as np

DRAWS = 4000


def min_of_means(per_prompt: np.ndarray) -> float:
    """per_prompt (prompts, objectives): the worst objective's mean."""
    return float(per_prompt.mean(axis=0).min())


def _resampled_mins(sides: list[np.ndarray], draws: int, seed: int) -> list[np.ndarray]:
    """Each side's Min on the same `draws` resamples of its prompts: (draws,) each."""
    prompts = len(sides[0])
    counts = np.random.default_rng(seed).multinomial(prompts, np.full(prompts, 1.0 / prompts), size=draws)
    return [(counts @ side).min(axis=1) / prompts for side in sides]


def _interval(mean: float, resampled: np.ndarray, prompts: int) -> dict[str, float]:
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"mean": mean, "low": float(low), "high": float(high), "n": prompts}


def min_interval(a: np.ndarray, draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """Min(a) with its 95% bootstrap interval over prompts: a (prompts, objectives) of
    per-prompt means -> {"mean", "low", "high", "n"}."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"a Min needs values for some prompts and objectives: {a.shape}")
    (resampled,) = _resampled_mins([a], draws, seed)
    return _interval(min_of_means(a), resampled, len(a))


def min_difference(a: np.ndarray, b: np.ndarray, draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """Min(a) - Min(b) with its paired 95% bootstrap interval: a, b (prompts, objectives) of
    per-prompt means, row p of both for the same prompt -> {"mean", "low", "high", "n"}."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise ValueError(f"both need values for the same prompts and objectives: {a.shape} and {b.shape}")
    mins_a, mins_b = _resampled_mins([a, b], draws, seed)
    return _interval(min_of_means(a) - min_of_means(b), mins_a - mins_b, len(a))
