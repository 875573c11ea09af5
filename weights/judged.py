"""The judged fit's estimates: each objective's expected reward under the mixture, from samples
of another policy, and its gradient in lambda. Pure numpy.

The judged fit maximises min_k E_{pi_lambda}[r_k]: what an eval measures, not the implicit
rewards' log-ratios that MPO's own objective balances. pi_lambda is the *sequence-level* product
exp(sum_i lambda_i a_i(y|x)) / Z_lambda(x), with a_i = log pi_i(y|x) summed over the response:
its density ratio to any proposal q is known up to Z_lambda, which self-normalisation cancels.
The server serves the per-token product instead (mixer.math); the two differ by per-prefix
normalisers that no finite record of samples gives for every lambda, so the fit optimises the
sequence-level family and its job measures the gap on samples of the served mixture.

With samples y_j ~ q(.|x) (the reference, or the served mixture at an earlier lambda) and
w_j = softmax_j(lambda . a_j - log q_j) per prompt:

    E_lambda[r_k] ~ mean_x sum_j w_j r_jk,   d/dlambda_i = mean_x Cov_w(r_k, a_i).

Rewards are put on one scale first. The default is each sample's win probability against the
prompt's reference answers (ties count half, in each judge's direction): E_lambda of that is the
mixture's win rate against the reference, the number an eval's Min takes the minimum of, and it
needs no beta to make judges of different spreads comparable. 'standard' shifts and scales each
objective by its mean and deviation over the reference answers instead.
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from math import comb

import numpy as np

from weights.saddle import SaddleIterate, SaddleResult, maxmin


def importance_weights(weights: np.ndarray, logprobs: np.ndarray, proposal: np.ndarray) -> np.ndarray:
    """Self-normalised weights of the sequence-level mixture against the proposal, per prompt.
    weights (P,), logprobs (N, M, P) of the policies, proposal (N, M) log q -> (N, M)."""
    z = logprobs @ weights - proposal
    w = np.exp(z - z.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def effective_sample_size(w: np.ndarray) -> np.ndarray:
    """(sum w)^2 / sum w^2 per prompt, for self-normalised w (N, M): between 1 and M."""
    return 1.0 / (w**2).sum(axis=1)


def estimate(
    weights: np.ndarray, logprobs: np.ndarray, proposal: np.ndarray, rewards: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """E_lambda[r_k] (K,) and its jacobian in lambda (K, P): rewards (N, M, K)."""
    w = importance_weights(weights, logprobs, proposal)  # (N, M)
    values = np.einsum("nm,nmk->nk", w, rewards)  # (N, K)
    centred = logprobs - np.einsum("nm,nmp->np", w, logprobs)[:, None, :]  # a - E_w[a], (N, M, P)
    jacobian = np.einsum("nm,nmk,nmp->nkp", w, rewards - values[:, None, :], centred)  # Cov_w, (N, K, P)
    return values.mean(axis=0), jacobian.mean(axis=0)


def win_probabilities(rewards: np.ndarray, pool: np.ndarray, higher: np.ndarray, pool_is_samples: bool) -> np.ndarray:
    """Each sample's probability of beating one of its prompt's reference answers, per objective.

    rewards (N, M, K) of the samples; pool (N, R, K) the reference answers' rewards; higher (K,)
    True where a larger reward is better. Ties count half. When the samples are the pool
    itself (pool_is_samples, M == R), a sample is compared with the prompt's other answers."""
    sign = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    diff = (rewards[:, :, None, :] - pool[:, None, :, :]) * sign  # (N, M, R, K)
    wins = (diff > 0) + 0.5 * (diff == 0)
    if not pool_is_samples:
        return wins.mean(axis=2)
    if pool.shape[1] < 2:
        raise ValueError("win probabilities against the prompt's other answers need at least 2 answers per prompt")
    others = 1.0 - np.eye(pool.shape[1])[None, :, :, None]  # leave each answer out of its own comparison
    return (wins * others).sum(axis=2) / (pool.shape[1] - 1)


def standardised_against(rewards: np.ndarray, pool: np.ndarray, higher: np.ndarray) -> np.ndarray:
    """Rewards shifted and scaled by the reference answers' mean and deviation per objective,
    negated where lower is better: (N, M, K). A constant objective becomes all zeros."""
    mean = pool.mean(axis=(0, 1))
    spread = pool.std(axis=(0, 1))
    sign = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    return sign * (rewards - mean) / np.where(spread > 0, spread, 1.0)


@dataclass
class Samples:
    """One round's samples: every policy's sequence log-prob, the proposal's, the rewards."""

    logprobs: np.ndarray  # (N, M, P) a_i(y|x) of the policies
    proposal: np.ndarray  # (N, M) log q(y|x) of the policy that drew them
    rewards: np.ndarray  # (N, M, K) on the fit's scale

    def estimate(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return estimate(weights, self.logprobs, self.proposal, self.rewards)

    def ess(self, weights: np.ndarray) -> float:
        """Mean effective sample size per prompt as a share of the samples drawn (1 = as good as
        samples of pi_lambda itself)."""
        w = importance_weights(weights, self.logprobs, self.proposal)
        return float(effective_sample_size(w).mean() / w.shape[1])


MIN_ESS = 0.05  # the share of the samples' worth below which an estimate is not trusted to pick a start
GRID_POINTS = 1500  # at most this many points of the simplex are tried for a start


def simplex_grid(size: int, points: int = GRID_POINTS) -> np.ndarray:
    """Every point of the simplex whose coordinates are multiples of 1/n, for the finest n that
    gives at most `points` of them (at least the vertices and the centre's neighbours): (G, size)."""
    if size == 1:
        return np.ones((1, 1))
    n = 1
    while comb(n + 1 + size - 1, size - 1) <= points:
        n += 1
    grid = [np.array(c + (n - sum(c),)) / n for c in product(range(n + 1), repeat=size - 1) if sum(c) <= n]
    return np.array(grid)


def best_start(samples: Samples, around: np.ndarray) -> np.ndarray:
    """Where the saddle starts: the best point of a grid over the simplex by the samples' own
    estimate of min_k E[r_k], among the points where those samples still say something (ESS share
    >= MIN_ESS), `around` (the round's proposal) included. The objective is not concave, so a
    start in the right basin is what lets mirror prox find the maximiser rather than a vertex."""
    best, best_value = around, float(samples.estimate(around)[0].min())
    for point in simplex_grid(len(around)):
        if samples.ess(point) >= MIN_ESS:
            value = float(samples.estimate(point)[0].min())
            if value > best_value:
                best, best_value = point, value
    return best


def fit_round(
    samples: Samples,
    iterations: int,
    step: float,
    adversary_step: float,
    around: np.ndarray,
    on_iterate: Callable[[SaddleIterate], None] | None = None,
    first_t: int = 0,
) -> SaddleResult:
    """The max-min saddle on one round's samples from best_start(around) (every prompt at every
    iteration: the gradient is cheap and exact for the sample objective); each iterate carries
    its ESS share."""

    def report(iterate: SaddleIterate) -> None:
        iterate.ess = samples.ess(np.array(iterate.weights))
        if on_iterate:
            on_iterate(iterate)

    policies, objectives = samples.logprobs.shape[2], samples.rewards.shape[2]
    start = best_start(samples, around)
    return maxmin(samples.estimate, policies, objectives, iterations, step, adversary_step, start, report, first_t)
