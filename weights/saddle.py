"""Max-min over the simplex as a saddle point, by mirror prox. Pure numpy.

The judged fit and the pair fit both choose lambda (over the policies) to maximise the worst
objective, max_lambda min_k f_k(lambda). Written as a two-player game,

    max_lambda min_mu sum_k mu_k f_k(lambda),    mu on the objectives' simplex,

each player takes exponentiated-gradient steps: lambda ascends sum_k mu_k grad f_k, and mu
moves toward the objectives served worst (its gradient is f itself). Plain simultaneous steps
with averaged iterates (what the MPO solver does for its convex F) converge slowly here: the
average keeps the early iterates' bias, and a step large enough to move cycles around the
saddle. Mirror prox (Nemirovski 2004) takes each step with the gradients at a trial step
(extragradient), which damps the cycling; its iterates converge themselves, so the output is
an iterate, not their average: the one with the largest min_k f_k (the start included).

Where every f_k is concave in lambda (the pair fit: log sigmoid of a margin linear in lambda)
the game is concave-convex and the iterates converge to the saddle point, so the best is the
last (on the tests' problems within 1e-6 of the exact maximiser, where the averages of plain
steps were 1e-3 off after as many iterations). The judged fit's expectations are not concave
in general: there a game's equilibrium need not be a max-min point, and the iterates may pass
the maximiser and drift to a worse kink; the best iterate keeps it, and the caller chooses a
start in the right basin (weights.judged).

Steps are constants in the problem's own units: lambda's step is `step` over the largest
gradient entry at the start, mu's `adversary_step` over the spread of the objectives' values
there, so one default serves log-ratios in nats and win probabilities alike.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# f(lambda) -> (values (K,), jacobian (K, P)): each objective's value and its gradient in lambda.
ValueAndJacobian = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class SaddleIterate:
    t: int
    weights: list[float]  # lambda_t (policies)
    objective: float  # min_k f_k(lambda_t)
    expected: list[float]  # f_k(lambda_t) for every objective
    adversary: list[float]  # mu_t (objectives)
    ess: float | None = None  # effective sample size share at lambda_t (judged fit)


@dataclass
class SaddleResult:
    weights: list[float]  # the output: the iterate with the largest min_k f_k
    objective: float  # min_k f_k at the output
    expected: list[float]
    trajectory: list[SaddleIterate] = field(default_factory=list)
    start_objective: float = float("nan")
    start_expected: list[float] = field(default_factory=list)


def _exp_step(log_weights: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    log_weights = log_weights + direction
    log_weights -= log_weights.max()
    weights = np.exp(log_weights)
    return log_weights, weights / weights.sum()


def simplex_point(weights, size: int) -> np.ndarray:
    point = np.asarray(weights, dtype=np.float64)
    if point.shape != (size,) or (point < 0).any() or not np.isclose(point.sum(), 1.0):
        raise ValueError(f"need a point of the {size}-simplex, got {weights}")
    return point


def maxmin(
    value_and_jacobian: ValueAndJacobian,
    policies: int,
    objectives: int,
    iterations: int,
    step: float,
    adversary_step: float,
    start: np.ndarray | None = None,
    on_iterate: Callable[[SaddleIterate], None] | None = None,
    first_t: int = 0,
    eligible: Callable[[np.ndarray], bool] | None = None,
) -> SaddleResult:
    """Mirror prox on max_lambda min_mu mu . f(lambda) from `start` (default uniform) and
    uniform mu. Iterates are numbered from first_t + 1 (a fit in rounds continues its count);
    on_iterate sees each one (progress, cancellation by raising). The output is the best
    iterate among the eligible ones (default all), the start if none is better."""
    if iterations < 1 or policies < 1 or objectives < 1 or step <= 0 or adversary_step <= 0:
        raise ValueError(
            f"need iterations, policies and objectives >= 1 and positive steps; got {iterations}, {policies}, "
            f"{objectives}, {step}, {adversary_step}"
        )
    weights = simplex_point(np.full(policies, 1.0 / policies) if start is None else start, policies)
    log_weights = np.log(np.maximum(weights, 1e-300))
    log_mu = np.zeros(objectives)
    mu = np.full(objectives, 1.0 / objectives)
    start_values, start_jacobian = value_and_jacobian(weights)
    eta = step / max(float(np.abs(start_jacobian).max()), 1e-12)
    eta_mu = adversary_step / max(float(np.ptp(start_values)), 1e-3 * float(np.abs(start_values).max()), 1e-12)
    values, jacobian = start_values, start_jacobian
    best_weights, best_values = weights, start_values
    trajectory = []
    for t in range(iterations):
        _, trial_weights = _exp_step(log_weights, eta * (mu @ jacobian))
        _, trial_mu = _exp_step(log_mu, -eta_mu * values)
        trial_values, trial_jacobian = value_and_jacobian(trial_weights)
        log_weights, weights = _exp_step(log_weights, eta * (trial_mu @ trial_jacobian))
        log_mu, mu = _exp_step(log_mu, -eta_mu * trial_values)
        values, jacobian = value_and_jacobian(weights)
        iterate = SaddleIterate(first_t + t + 1, weights.tolist(), float(values.min()), values.tolist(), mu.tolist())
        trajectory.append(iterate)
        if values.min() >= best_values.min() and (eligible is None or eligible(weights)):
            best_weights, best_values = weights, values
        if on_iterate:
            on_iterate(iterate)
    return SaddleResult(
        best_weights.tolist(),
        float(best_values.min()),
        best_values.tolist(),
        trajectory,
        float(start_values.min()),
        start_values.tolist(),
    )
