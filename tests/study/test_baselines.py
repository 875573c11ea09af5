"""The retrained baselines' pairs on a hand-made example: standardised scores, summed (linear)
or their minimum (max-min), then pairs by a clear gap with a real answer chosen."""

import pytest

from demo.smollm2.build import ObjectiveSetup
from demo.smollm2.lora_dpo import LoraDpoConfig
from demo.smollm2.sampling import Answer
from study.baselines import baseline_pairs, combined_scores, standardisation

OBJECTIVES = ["a", "b"]
# One prompt, three answers. Over the three: a has mean 2 and deviation sqrt(2/3), b mean 20
# and deviation sqrt(200/3); standardised, x = (+1.22, -1.22), y = (0, +1.22), z = (-1.22, 0).
SCORES = [[{"a": 3.0, "b": 10.0}, {"a": 2.0, "b": 30.0}, {"a": 1.0, "b": 20.0}]]
TEXTS = [["answer x is here", "answer y is here", "answer z is here"]]
Z = 1.224744871391589  # 1 / sqrt(2/3)


def answers() -> list[list[Answer]]:
    return [[Answer([1], [10 + i], True, -1.0) for i in range(3)]]


def setup(gap: float) -> ObjectiveSetup:
    return ObjectiveSetup(min_gap=gap, chosen_must_end=False, dpo=LoraDpoConfig())


def test_standardisation_is_over_every_answer():
    stats = standardisation(SCORES, OBJECTIVES)
    assert stats["a"] == pytest.approx((2.0, (2 / 3) ** 0.5)) and stats["b"] == pytest.approx((20.0, (200 / 3) ** 0.5))
    assert standardisation([[{"a": 1.0}, {"a": 1.0}]], ["a"]) == {"a": (1.0, 1.0)}  # constant: no division by 0


def test_linear_sums_and_maxmin_takes_the_worst_standardised_score():
    assert combined_scores(SCORES, OBJECTIVES, "linear")[0] == pytest.approx([0.0, Z, -Z])
    assert combined_scores(SCORES, OBJECTIVES, "maxmin")[0] == pytest.approx([-Z, 0.0, -Z])
    with pytest.raises(ValueError, match="unknown baseline kind"):
        combined_scores(SCORES, OBJECTIVES, "mean")


def test_pairs_differ_between_linear_and_maxmin():
    x, y, z = answers()[0]
    # linear: y (1.22) > x (0) > z (-1.22); every gap >= 1 makes a pair.
    assert baseline_pairs(answers(), TEXTS, SCORES, OBJECTIVES, "linear", setup(1.0)) == [(x, z), (y, x), (y, z)]
    # max-min: y (0) beats x and z (both -1.22), which tie: no pair between them.
    assert baseline_pairs(answers(), TEXTS, SCORES, OBJECTIVES, "maxmin", setup(1.0)) == [(y, x), (y, z)]
    # a larger gap keeps only the clearest pair; a degenerate answer is never chosen
    assert baseline_pairs(answers(), TEXTS, SCORES, OBJECTIVES, "linear", setup(2.0)) == [(y, z)]
    degenerate = [[TEXTS[0][0], "yes", TEXTS[0][2]]]
    assert baseline_pairs(answers(), degenerate, SCORES, OBJECTIVES, "linear", setup(1.0)) == [(x, z)]
