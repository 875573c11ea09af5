"""The pair fit and the statistics of preference pairs. Pure numpy.

A preference pair (prompt x, chosen w, rejected l, objective k) is the unit alignment teams
already have. The mixture's implicit reward, beta log(pi_lambda / pi_ref), has the margin

    m(lambda) = sum_i lambda_i [(a_i(w) - a_ref(w)) - (a_i(l) - a_ref(l))] = lambda . d

between chosen and rejected at sequence level (the normaliser Z_lambda(x) cancels), linear in
lambda. The pair fit maximises the worst objective's mean log sigmoid(beta m): concave in lambda,
so the max-min is a concave-convex saddle (weights.saddle) and its averaged iterates converge
to the maximiser.
"""

import numpy as np

from weights.saddle import SaddleResult, maxmin


def margins(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Per pair and component, the chosen answer's log-ratio to the reference minus the
    rejected one's: chosen, rejected (pairs, C) log-probs with the reference first -> (pairs, C-1)."""
    return (chosen[:, 1:] - chosen[:, :1]) - (rejected[:, 1:] - rejected[:, :1])


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(x))


class PairObjective:
    """f_k(lambda) = mean over objective k's pairs of log sigmoid(beta lambda . d), and its jacobian."""

    def __init__(self, differences: np.ndarray, objectives: np.ndarray, count: int, beta: float) -> None:
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}")
        present = np.bincount(objectives, minlength=count)
        if differences.ndim != 2 or len(differences) != len(objectives) or (present == 0).any():
            raise ValueError(f"every objective needs pairs; pairs per objective {present.tolist()}")
        self.d, self.beta, self.count = differences, beta, count
        self.membership = np.eye(count)[objectives].T / present[:, None]  # (K, pairs): mean within each objective

    def __call__(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.beta * (self.d @ weights)  # (pairs,)
        values = self.membership @ _log_sigmoid(m)
        jacobian = self.membership @ (self.beta * _sigmoid(-m)[:, None] * self.d)  # (K, P)
        return values, jacobian


def fit_pairs(
    differences: np.ndarray,
    objectives: np.ndarray,
    count: int,
    beta: float,
    iterations: int,
    step: float,
    adversary_step: float,
    on_iterate=None,
) -> SaddleResult:
    """max_lambda min_k mean log sigmoid(beta m): differences (pairs, P) from margins(), objectives
    (pairs,) each pair's objective index among `count`."""
    objective = PairObjective(differences, objectives, count, beta)
    return maxmin(objective, differences.shape[1], count, iterations, step, adversary_step, on_iterate=on_iterate)
