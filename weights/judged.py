"""The judged fit's estimates: each objective's expected reward under the mixture, from samples
of another policy, and its gradient in lambda. Pure numpy.

The judged fit maximises min_k E_{pi_lambda}[r_k]: what an eval measures, not the implicit
rewards' log-ratios that MPO's own objective balances. With samples y_j ~ q(.|x) (the
reference, or the served mixture at an earlier lambda) and per prompt self-normalised weights
w_j = softmax_j(log t_lambda(y_j) - log q(y_j)) for an unnormalised target t_lambda:

    E_lambda[r_k] ~ mean_x sum_j w_j r_jk,   d/dlambda = mean_x Cov_w(r_k, d log t_lambda / dlambda).

Two families of targets (a_i = log pi_i(y|x) summed over the response, policies only):

- sequence-level, the product MPO's theory mixes: log t = lambda . a, exact from the components'
  log-probs. For one-token answers it is what the server serves.
- served, the per-token product the server samples from: log t = lambda . a - sum_t log Z_t(lambda),
  Z_t the normaliser of step t, which depends on the prefix. No finite record gives it for every
  lambda, so it is expanded to second order around a centre lambda_c whose normalisers, their
  gradient E_q[log pi] and Hessian Cov_q[log pi] were recorded with each answer (mixer.recording):
  exact in value and gradient at lambda_c, and its error grows with the cube of the distance. A
  fit in rounds re-centres on its latest weights, so where it stops moving it has the served
  family's exact gradient. On long answers the two families differ a lot: the sequence-level
  product multiplies the served one by prod_t Z_t <= 1, so it favours short answers on which
  the policies agree (bench/judged_families.py measures the difference).

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


@dataclass
class Expansion:
    """The served family's second-order model around `centre`: per sample, sum_t log Z_t there,
    its gradient and its Hessian in lambda (policies only; divided by the temperature as the
    log-probs are)."""

    centre: np.ndarray  # (P,)
    normaliser: np.ndarray  # (N, M)
    gradient: np.ndarray  # (N, M, P)
    hessian: np.ndarray  # (N, M, P, P)

    def log_target(self, weights: np.ndarray, logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log t_lambda (N, M) and its gradient (N, M, P) under the quadratic model."""
        delta = weights - self.centre
        curve = self.hessian @ delta  # (N, M, P)
        value = logprobs @ weights - self.normaliser - self.gradient @ delta - 0.5 * (curve @ delta)
        return value, logprobs - self.gradient - curve


def log_target(weights: np.ndarray, logprobs: np.ndarray, expansion: Expansion | None) -> tuple[np.ndarray, np.ndarray]:
    """log t_lambda (N, M) and d log t / d lambda (N, M, P): sequence-level, or served (expansion)."""
    if expansion is None:
        return logprobs @ weights, logprobs
    return expansion.log_target(weights, logprobs)


def importance_weights(
    weights: np.ndarray, logprobs: np.ndarray, proposal: np.ndarray, expansion: Expansion | None = None
) -> np.ndarray:
    """Self-normalised weights of the mixture against the proposal, per prompt. weights (P,),
    logprobs (N, M, P) of the policies, proposal (N, M) log q -> (N, M)."""
    z = log_target(weights, logprobs, expansion)[0] - proposal
    w = np.exp(z - z.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def effective_sample_size(w: np.ndarray) -> np.ndarray:
    """(sum w)^2 / sum w^2 per prompt, for self-normalised w (N, M): between 1 and M."""
    return 1.0 / (w**2).sum(axis=1)


def estimate(
    weights: np.ndarray,
    logprobs: np.ndarray,
    proposal: np.ndarray,
    rewards: np.ndarray,
    expansion: Expansion | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """E_lambda[r_k] (K,) and its jacobian in lambda (K, P): rewards (N, M, K)."""
    value, slope = log_target(weights, logprobs, expansion)
    z = value - proposal
    w = np.exp(z - z.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)  # (N, M)
    values = np.einsum("nm,nmk->nk", w, rewards)  # (N, K)
    centred = slope - np.einsum("nm,nmp->np", w, slope)[:, None, :]  # (N, M, P)
    jacobian = np.einsum("nm,nmk,nmp->nkp", w, rewards - values[:, None, :], centred)  # Cov_w, (N, K, P)
    return values.mean(axis=0), jacobian.mean(axis=0)


def win_probabilities(rewards: np.ndarray, pool: np.ndarray, higher: np.ndarray, pool_is_samples: bool) -> np.ndarray:
    """Each sample's probability of beating one of its prompt's reference answers, per objective.

    rewards (N, M, K) of the samples; pool (N, R, K) the reference answers' rewards; higher (K,)
    True where a larger reward is better. Ties count half; rewards may be infinite (a length
    judge's cut answers, evaluation.stats.censor_cut). When the samples are the pool
    itself (pool_is_samples, M == R), a sample is compared with the prompt's other answers."""
    sign = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    mine, theirs = rewards[:, :, None, :] * sign, pool[:, None, :, :] * sign  # (N, M, R, K)
    wins = (mine > theirs) + 0.5 * (mine == theirs)  # compared, not subtracted: cut answers are infinite
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
    """One round's samples: every policy's sequence log-prob, the proposal's, the rewards, and
    for the served family the expansion recorded with them."""

    logprobs: np.ndarray  # (N, M, P) a_i(y|x) of the policies (over the temperature)
    proposal: np.ndarray  # (N, M) log q(y|x) of the policy that drew them
    rewards: np.ndarray  # (N, M, K) on the fit's scale
    expansion: Expansion | None = None  # None: the sequence-level family

    def estimate(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return estimate(weights, self.logprobs, self.proposal, self.rewards, self.expansion)

    def ess(self, weights: np.ndarray) -> float:
        """Mean effective sample size per prompt as a share of the samples drawn (1 = as good as
        samples of the mixture itself)."""
        w = importance_weights(weights, self.logprobs, self.proposal, self.expansion)
        return float(effective_sample_size(w).mean() / w.shape[1])


TRUST = 0.5  # a point is judged only where its ESS is at least this share of the ESS at the round's centre
GRID_POINTS = 1500  # at most this many points of the simplex are tried for a start


def simplex_grid(size: int, points: int = GRID_POINTS) -> np.ndarray:
    """Every point of the simplex whose coordinates are multiples of 1/n, for the finest n that
    gives at most `points` of them: (G, size)."""
    if size == 1:
        return np.ones((1, 1))
    n = 1
    while comb(n + 1 + size - 1, size - 1) <= points:
        n += 1
    grid = [np.array(c + (n - sum(c),)) / n for c in product(range(n + 1), repeat=size - 1) if sum(c) <= n]
    return np.array(grid)


def trusted(samples: Samples, centre: np.ndarray) -> Callable[[np.ndarray], bool]:
    """Whether the samples still judge a point: its ESS at least TRUST of the centre's. Beyond,
    an estimate rests on a few heavy samples (and, for the served family, on the expansion far
    from where it is exact): the largest of many such estimates is mostly noise."""
    floor = TRUST * samples.ess(centre)
    return lambda weights: samples.ess(weights) >= floor


def best_start(samples: Samples, centre: np.ndarray) -> np.ndarray:
    """Where the saddle starts: the best point of a grid over the simplex by the samples' own
    estimate of min_k E[r_k], among the points they judge (trusted), the centre included. The
    objective is not concave, so a start in the right basin is what lets mirror prox find the
    maximiser rather than a vertex."""
    judged = trusted(samples, centre)
    best, best_value = centre, float(samples.estimate(centre)[0].min())
    for point in simplex_grid(len(centre)):
        if judged(point):
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
    iteration: the gradient is cheap and exact for the sample objective); the output is the
    best iterate the samples judge (trusted); each iterate carries its ESS share."""

    def report(iterate: SaddleIterate) -> None:
        iterate.ess = samples.ess(np.array(iterate.weights))
        if on_iterate:
            on_iterate(iterate)

    policies, objectives = samples.logprobs.shape[2], samples.rewards.shape[2]
    start = best_start(samples, around)
    return maxmin(
        samples.estimate,
        policies,
        objectives,
        iterations,
        step,
        adversary_step,
        start,
        report,
        first_t,
        eligible=trusted(samples, around),
    )
