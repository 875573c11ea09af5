"""Exact maximisers for the max-min fits' tests: the pair fit's concave program by scipy."""

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from weights.pairs import PairObjective


def exact_pair_maxmin(objective: PairObjective, policies: int) -> tuple[np.ndarray, float]:
    """max t subject to f_k(lambda) >= t on the simplex, by SLSQP (f_k concave: one optimum); with
    two policies, min_k f_k of the first one's weight by a bounded scalar search (it is concave)."""
    if policies == 2:
        found = minimize_scalar(
            lambda w: -objective(np.array([w, 1.0 - w]))[0].min(), bounds=(0.0, 1.0), options={"xatol": 1e-10}
        )
        return np.array([found.x, 1.0 - found.x]), -found.fun
    constraints = [{"type": "eq", "fun": lambda x: x[:policies].sum() - 1.0}] + [
        {"type": "ineq", "fun": lambda x, k=k: objective(x[:policies])[0][k] - x[policies]}
        for k in range(objective.count)
    ]
    # From a feasible start (t = the uniform weights' min): scipy 1.17's SLSQP stops with "Positive
    # directional derivative for linesearch" at the optimum from an infeasible one (t = -10).
    uniform = np.full(policies, 1.0 / policies)
    start = np.r_[uniform, objective(uniform)[0].min()]
    result = minimize(
        lambda x: -x[policies],
        start,
        bounds=[(0.0, 1.0)] * policies + [(None, None)],
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert result.success, result.message
    return result.x[:policies], -result.fun
