"""The BSMD solver against exact minimisers found by a general convex solver (scipy)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from weights.solver import expected_scores, fit_scores, mirror_descent, normalised_rewards, objective

REFERENCE = Path(__file__).parent / "reference_trajectory.json"


def exact_minimiser(scores: np.ndarray) -> np.ndarray:
    """argmin of F over the simplex by SLSQP (F is smooth and convex)."""
    k = scores.shape[2]
    result = minimize(
        lambda w: objective(w, scores),
        np.full(k, 1.0 / k),
        jac=lambda w: expected_scores(w, scores),
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert result.success, result.message
    return result.x


def problem(seed: int, prompts: int = 6, samples: int = 5, objectives: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # objectives that trade off: each sample is good for some and bad for others
    return rng.normal(size=(prompts, samples, objectives)) + rng.normal(size=objectives)


def test_gradient_matches_finite_differences():
    scores = problem(0)
    w = np.array([0.2, 0.5, 0.3])
    eps = 1e-6
    numeric = [(objective(w + eps * e, scores) - objective(w - eps * e, scores)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(expected_scores(w, scores), numeric, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_gradient_descent_converges_to_the_minimiser(seed):
    scores = problem(seed)
    target = exact_minimiser(scores)
    result = mirror_descent(
        lambda w, _t: expected_scores(w, scores),
        dimension=3,
        iterations=20000,
        step=20.0,
        evaluate=lambda w: (objective(w, scores), expected_scores(w, scores)),
    )
    assert np.abs(np.array(result.weights) - target).sum() < 0.01, (result.weights, target)
    assert result.objective <= objective(np.full(3, 1 / 3), scores) + 1e-9


def test_minibatch_fit_approaches_the_minimiser():
    scores = problem(5, prompts=64, samples=8, objectives=2)
    target = exact_minimiser(scores)
    result = fit_scores(scores, iterations=4000, step=10.0, batch_size=16, seed=0)
    assert np.abs(np.array(result.weights) - target).sum() < 0.05, (result.weights, target)
    assert len(result.trajectory) == 4000 and result.trajectory[-1].t == 4000


def test_weight_moves_toward_the_worst_served_objective():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(32, 8, 2)) * 0.1
    scores[..., 0] -= 1.0  # objective 0 is served badly by the reference
    result = fit_scores(scores, iterations=200, step=1.0, batch_size=8)
    assert result.weights[0] > 0.5


def test_normalised_rewards_have_zero_log_mean_exp_per_prompt():
    rewards = np.random.default_rng(0).normal(size=(4, 6, 2))
    normalised = normalised_rewards(rewards, beta=0.5)
    np.testing.assert_allclose(np.log(np.exp(normalised).mean(axis=1)), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        normalised_rewards(rewards, beta=0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        fit_scores(np.zeros((3, 2)), 10, 1.0, 2)
    with pytest.raises(ValueError, match="finite"):
        fit_scores(np.full((2, 2, 2), np.nan), 10, 1.0, 2)


def test_reference_trajectory_is_unchanged():
    """A committed small fit catches silent changes to the solver."""
    scores = problem(7, prompts=10, samples=4, objectives=3)
    result = fit_scores(scores, iterations=25, step=2.0, batch_size=4, seed=3)
    got = {"weights": result.weights, "trajectory": [it.weights for it in result.trajectory]}
    if os.environ.get("MPO_WRITE_REFERENCE"):  # deliberate regeneration after a reviewed change
        REFERENCE.write_text(json.dumps(got, indent=1))
    expected = json.loads(REFERENCE.read_text())
    np.testing.assert_allclose(got["weights"], expected["weights"], atol=1e-10)
    np.testing.assert_allclose(got["trajectory"], expected["trajectory"], atol=1e-10)
