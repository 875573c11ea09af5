"""MPO's batch stochastic mirror descent (BSMD) on the simplex. Pure numpy.

The objective (Wang et al., ICML 2025, arXiv 2502.18699):

    F(lambda) = E_x log E_{y ~ pi_ref(.|x)} exp(sum_k lambda_k s_k(x, y))

with implicit rewards s_k(x, y) = log pi_k(y|x) - log pi_ref(y|x). F is convex; its gradient
dF/dlambda_k is the expected s_k under the mixture pi_lambda, so descent moves weight toward
the objective the mixture serves worst. With m samples y_j ~ pi_ref per prompt, the
expectation under the mixture is estimated with self-normalised importance weights
w_j = softmax_j(sum_k lambda_k s_jk).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def _log_mean_exp(z: np.ndarray, axis: int) -> np.ndarray:
    top = z.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(z - top).mean(axis=axis, keepdims=True))).squeeze(axis)


def objective(weights: np.ndarray, scores: np.ndarray) -> float:
    """Sample estimate of F: scores (N prompts, M samples, K objectives), weights (K,)."""
    return float(_log_mean_exp(scores @ weights, axis=1).mean())


def expected_scores(weights: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Estimated E_{pi_lambda}[s_k] per objective, which is also the gradient of F: (K,)."""
    z = scores @ weights  # (N, M)
    w = np.exp(z - z.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)  # self-normalised importance weights per prompt
    return np.einsum("nm,nmk->k", w, scores) / scores.shape[0]


def normalised_rewards(rewards: np.ndarray, beta: float) -> np.ndarray:
    """Explicit-reward variant: P(r_k)/beta = r_k/beta - log E_{pi_ref} exp(r_k/beta), the
    expectation estimated per prompt from its m samples. rewards (N, M, K) -> (N, M, K)."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    scaled = rewards / beta
    return scaled - _log_mean_exp(scaled, axis=1)[:, None, :]


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each objective's scores shifted and scaled to mean 0, standard deviation 1 over every
    prompt and sample: (N, M, K) -> (N, M, K). A constant objective becomes all zeros."""
    mean = scores.mean(axis=(0, 1), keepdims=True)
    spread = scores.std(axis=(0, 1), keepdims=True)
    return (scores - mean) / np.where(spread > 0, spread, 1.0)


@dataclass
class Iterate:
    t: int
    weights: list[float]  # lambda_t after the update
    objective: float  # estimate of F at lambda_t
    expected: list[float]  # estimated E_{pi_lambda_t}[s_k]


@dataclass
class FitResult:
    weights: list[float]  # the average of the iterates: the method's output
    objective: float
    expected: list[float]
    trajectory: list[Iterate] = field(default_factory=list)
    start_objective: float = float("nan")  # at the uniform starting point
    start_expected: list[float] = field(default_factory=list)


def mirror_descent(
    gradient: Callable[[np.ndarray, int], np.ndarray],
    dimension: int,
    iterations: int,
    step: float,
    evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    on_iterate: Callable[[Iterate], None] | None = None,
) -> FitResult:
    """Exponentiated-gradient descent from the uniform point, step eta = step / sqrt(T),
    returning the average of the iterates. gradient(lambda, t) may be stochastic.

    evaluate(lambda) -> (F estimate, expected scores) fills the trajectory; on_iterate is
    called after every iteration (progress reports, cancellation by raising)."""
    if iterations < 1 or dimension < 1 or step <= 0:
        raise ValueError(f"need iterations >= 1, dimension >= 1, step > 0; got {iterations}, {dimension}, {step}")
    eta = step / np.sqrt(iterations)
    log_weights = np.zeros(dimension)  # the update in log space: no overflow for large scores
    weights = np.full(dimension, 1.0 / dimension)
    start_value, start_expected = evaluate(weights) if evaluate else (float("nan"), np.full(dimension, np.nan))
    total = np.zeros(dimension)
    trajectory = []
    for t in range(iterations):
        log_weights -= eta * gradient(weights, t)
        log_weights -= log_weights.max()
        weights = np.exp(log_weights) / np.exp(log_weights).sum()
        total += weights
        value, expected = evaluate(weights) if evaluate else (float("nan"), np.full(dimension, np.nan))
        iterate = Iterate(t + 1, weights.tolist(), float(value), np.asarray(expected).tolist())
        trajectory.append(iterate)
        if on_iterate:
            on_iterate(iterate)
    average = total / iterations
    value, expected = evaluate(average) if evaluate else (float("nan"), np.full(dimension, np.nan))
    return FitResult(
        average.tolist(),
        float(value),
        np.asarray(expected).tolist(),
        trajectory,
        float(start_value),
        np.asarray(start_expected).tolist(),
    )


def fit_scores(
    scores: np.ndarray,
    iterations: int,
    step: float,
    batch_size: int,
    seed: int = 0,
    on_iterate: Callable[[Iterate], None] | None = None,
) -> FitResult:
    """BSMD on precomputed scores (N prompts, M samples, K objectives): each iteration
    draws a minibatch of prompts; scores are reused across iterations."""
    if scores.ndim != 3 or min(scores.shape) < 1:
        raise ValueError(f"scores must be (prompts, samples, objectives), got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    rng = np.random.default_rng(seed)
    count = scores.shape[0]
    size = min(batch_size, count)

    def gradient(weights: np.ndarray, _t: int) -> np.ndarray:
        batch = scores[rng.choice(count, size=size, replace=False)]
        return expected_scores(weights, batch)

    def evaluate(weights: np.ndarray) -> tuple[float, np.ndarray]:
        return objective(weights, scores), expected_scores(weights, scores)

    return mirror_descent(gradient, scores.shape[2], iterations, step, evaluate, on_iterate)
