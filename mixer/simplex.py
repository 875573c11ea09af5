"""Mixture weights on the probability simplex: the one place where user-given weights are
checked and normalised, so the manifest, the admin API and per-request overrides agree."""

import math
from collections.abc import Mapping, Sequence


class WeightsError(ValueError):
    """Weights that cannot be put on the simplex; the message says which value is wrong."""


def normalise_weights(weights: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    """Check weights keyed by policy name and return them summing to 1, one entry per name.

    Names not mentioned get weight 0. Refuses unknown names, non-numbers, NaN/inf, negative
    values and an all-zero vector, quoting the bad value and the valid names.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise WeightsError(
            f"weights must be a non-empty object mapping policy names to numbers; valid names: {list(names)}"
        )
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise WeightsError(f"unknown policy {unknown[0]!r} in weights; valid names: {list(names)}")
    values: dict[str, float] = {}
    for name in names:
        raw = weights.get(name, 0.0)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise WeightsError(f"weight for {name!r} must be a number, got {raw!r}")
        value = float(raw)
        if not math.isfinite(value):
            raise WeightsError(f"weight for {name!r} must be finite, got {raw!r}")
        if value < 0:
            raise WeightsError(f"weight for {name!r} must be non-negative, got {raw!r}")
        values[name] = value
    total = sum(values.values())
    if total <= 0:
        raise WeightsError(f"weights must not all be zero; got {dict(weights)}")
    return {name: value / total for name, value in values.items()}
