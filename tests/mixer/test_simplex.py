import math

import pytest

from mixer.simplex import WeightsError, normalise_weights

NAMES = ["positive", "concise"]


def test_normalises_and_fills_missing_names_with_zero():
    assert normalise_weights({"positive": 3, "concise": 1}, NAMES) == {"positive": 0.75, "concise": 0.25}
    assert normalise_weights({"concise": 2}, NAMES) == {"positive": 0.0, "concise": 1.0}


@pytest.mark.parametrize(
    "weights,fragment",
    [
        ({"helpful": 1}, "unknown policy 'helpful'"),
        ({"positive": -1, "concise": 2}, "non-negative"),
        ({"positive": math.nan}, "finite"),
        ({"positive": math.inf}, "finite"),
        ({"positive": 0, "concise": 0}, "not all be zero"),
        ({"positive": "1"}, "must be a number"),
        ({"positive": True}, "must be a number"),
        ({}, "non-empty"),
    ],
)
def test_refuses_bad_weights_naming_the_problem(weights, fragment):
    with pytest.raises(WeightsError, match=fragment):
        normalise_weights(weights, NAMES)


def test_error_lists_valid_names():
    with pytest.raises(WeightsError, match=r"\['positive', 'concise'\]"):
        normalise_weights({"x": 1}, NAMES)
