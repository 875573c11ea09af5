"""The paired bootstrap of a difference of Min (evaluation.bootstrap) against distributions small
enough to write down: with a few prompts every resample's probability is a multinomial's."""

import numpy as np
import pytest

from evaluation.bootstrap import min_difference, min_interval


def test_two_prompts_whose_binding_objective_changes_between_resamples():
    # a serves objective 0 on prompt 0 and objective 1 on prompt 1; b serves both at 0.5.
    # Resamples: prompt 0 twice (p 1/4) or prompt 1 twice (1/4): a's means (1, 0) or (0, 1),
    # Min 0, difference -0.5; one of each (1/2): a's means (0.5, 0.5), difference 0.
    a, b = np.array([[1.0, 0.0], [0.0, 1.0]]), np.full((2, 2), 0.5)
    difference = min_difference(a, b)
    assert difference["mean"] == 0.0 and difference["n"] == 2  # on the prompts themselves
    assert (difference["low"], difference["high"]) == (-0.5, 0.0)


def test_a_constant_shift_has_no_spread_and_the_draws_follow_the_binomial():
    a = np.array([[0.9, 0.3], [0.2, 0.7], [0.5, 0.5]])
    shifted = min_difference(a, a - 0.1)
    assert shifted["mean"] == pytest.approx(0.1) and shifted["low"] == pytest.approx(0.1)
    assert shifted["high"] == pytest.approx(0.1)
    # One objective, a wins on one prompt of three: the difference is (times prompt 0 drawn) / 3,
    # Binomial(3, 1/3): P(0) = 8/27 (> 2.5%), P(3) = 1/27 (> 2.5%), so the interval is [0, 1].
    single = min_difference(np.array([[1.0], [0.0], [0.0]]), np.zeros((3, 1)))
    assert single["mean"] == pytest.approx(1 / 3) and (single["low"], single["high"]) == (0.0, 1.0)


def test_it_is_seeded_and_refuses_unpaired_input():
    rng = np.random.default_rng(5)
    a, b = rng.random((40, 3)), rng.random((40, 3))
    assert min_difference(a, b, seed=3) == min_difference(a, b, seed=3)
    assert min_difference(a, b, seed=3) != min_difference(a, b, seed=4)
    with pytest.raises(ValueError, match="same prompts"):
        min_difference(a, b[:39])


def test_a_min_alone_on_the_same_resamples():
    # Two prompts: resamples (0, 0) p 1/4 -> means (1, 0), Min 0; (1, 1) 1/4 -> Min 0; one of each
    # 1/2 -> (0.5, 0.5), Min 0.5. The Min of the prompts themselves is 0.5.
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert min_interval(a) == {"mean": 0.5, "low": 0.0, "high": 0.5, "n": 2}
    # The difference's resamples are the ones each Min's would be: Min(a) - Min(b) = 0 - 0.5 ...
    assert min_difference(a, np.full((2, 2), 0.5))["low"] == min_interval(a)["low"] - 0.5
    with pytest.raises(ValueError, match="some prompts"):
        min_interval(np.zeros((0, 2)))
