"""The pair fit against the exact maximiser of its concave objective (scipy), and its margins."""

import numpy as np
import pytest

from tests.maxmin import exact_pair_maxmin
from weights.pairs import PairObjective, fit_pairs, margins


def problem(seed: int, pairs: int = 60, policies: int = 3, objectives: int = 3):
    rng = np.random.default_rng(seed)
    # sequence-level margins of tens of nats, each policy better on some objectives' pairs
    d = rng.normal(size=(pairs, policies)) * 30 + rng.normal(size=policies) * 10
    return d, np.arange(pairs) % objectives


def test_margins_are_log_ratio_differences():
    chosen = np.array([[-10.0, -8.0, -12.0]])  # ref, policy a, policy b
    rejected = np.array([[-9.0, -11.0, -9.5]])
    np.testing.assert_allclose(margins(chosen, rejected), [[2.0 - (-2.0), -2.0 - (-0.5)]])


def test_jacobian_matches_finite_differences():
    d, o = problem(0)
    objective = PairObjective(d, o, 3, 0.1)
    w, eps = np.array([0.2, 0.5, 0.3]), 1e-6
    numeric = np.array([(objective(w + eps * e)[0] - objective(w - eps * e)[0]) / (2 * eps) for e in np.eye(3)]).T
    np.testing.assert_allclose(objective(w)[1], numeric, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_pair_fit_finds_the_exact_maximiser(seed):
    d, o = problem(seed)
    target, value = exact_pair_maxmin(PairObjective(d, o, 3, 0.1), 3)
    result = fit_pairs(d, o, 3, 0.1, iterations=2000, step=0.3, adversary_step=0.3)
    assert result.objective == pytest.approx(value, abs=1e-3)
    assert np.abs(np.array(result.weights) - target).sum() < 0.02, (result.weights, target)
    assert result.objective >= result.start_objective


def test_an_objective_without_pairs_is_refused():
    d, _ = problem(0, pairs=4)
    with pytest.raises(ValueError, match="every objective needs pairs"):
        PairObjective(d, np.array([0, 0, 1, 1]), 3, 0.1)
