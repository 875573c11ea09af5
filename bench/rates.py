"""How the benchmark turns timings into rates it can stand behind (pure Python).

A decode rate is the slope of time against output length, not two timings subtracted:
B (N - 1) / (t(N) - t(1)) goes negative or huge when t(1) jitters (a run here printed
-37,710 tok/s). Each round times every length once; a least-squares line through those
points gives that round's seconds per step, and B over it is the round's rate. Rounds are
repeated and reported as the median with the spread (max - min) / median; a figure whose
spread exceeds SPREAD_LIMIT is printed but flagged, and goals are not judged on it.
"""

import statistics
from dataclasses import asdict, dataclass

SPREAD_LIMIT = 0.10


def seconds_per_step(lengths: list[int], times: list[float]) -> float:
    """Least-squares slope of `times` against `lengths` (at least two distinct lengths)."""
    if len(lengths) != len(times) or len(set(lengths)) < 2:
        raise ValueError("need timings at two or more distinct lengths")
    mean_n, mean_t = statistics.fmean(lengths), statistics.fmean(times)
    covariance = sum((n - mean_n) * (t - mean_t) for n, t in zip(lengths, times, strict=True))
    variance = sum((n - mean_n) ** 2 for n in lengths)
    return covariance / variance


@dataclass(frozen=True)
class Figure:
    """The median of repeated measurements, their range, and whether that range is narrow."""

    median: float
    low: float
    high: float

    @property
    def spread(self) -> float:
        """(max - min) / median; infinite where the median is not positive."""
        return (self.high - self.low) / self.median if self.median > 0 else float("inf")

    @property
    def reliable(self) -> bool:
        return self.low > 0 and self.spread <= SPREAD_LIMIT

    def to_dict(self) -> dict:
        return {**asdict(self), "spread": self.spread, "reliable": self.reliable}


def figure(values: list[float]) -> Figure:
    if not values:
        raise ValueError("no measurements")
    return Figure(statistics.median(values), min(values), max(values))


def decode_rates(batch: int, lengths: list[int], rounds: list[list[float]]) -> list[float]:
    """Tokens/s of each round: batch / seconds per step; a non-positive slope (time that did
    not grow with length) gives 0, which marks the figure unreliable rather than absurd."""
    rates = []
    for times in rounds:
        step = seconds_per_step(lengths, times)
        rates.append(batch / step if step > 0 else 0.0)
    return rates


def format_figure(value: Figure, digits: int = 1, reliable: bool | None = None) -> str:
    """'123.4 ±3%' or '123.4 ±25%?' where the spread is too wide to judge (`reliable`
    overrides the figure's own verdict, for figures combined from several)."""
    flag = "" if (value.reliable if reliable is None else reliable) else "?"
    return f"{value.median:.{digits}f} ±{100 * value.spread / 2:.0f}%{flag}"
