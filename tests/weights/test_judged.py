"""The judged fit's estimates and saddle against exact answers on enumerable problems: every
'response' of a prompt listed with its probability, so E_lambda[r_k] is a finite sum."""

from types import SimpleNamespace

import numpy as np
import pytest

from weights.judged import (
    Expansion,
    Samples,
    best_start,
    estimate,
    fit_round,
    importance_weights,
    simplex_grid,
    standardised_against,
    win_probabilities,
)


def enumerable(seed: int, prompts: int = 8, responses: int = 30, policies: int = 3, objectives: int = 3):
    """Each policy a distribution over `responses` per prompt (log-probs), rewards in [0, 1]."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(prompts, responses, policies)) * 2 - 3
    a -= np.log(np.exp(a).sum(axis=1, keepdims=True))
    return a, rng.uniform(size=(prompts, responses, objectives))


def exact_values(w: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """E_lambda[r_k] of the sequence-level product, by summing over every response."""
    z = a @ w
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.einsum("nv,nvk->k", p, r) / a.shape[0]


def grid_max(a, r, n: int = 200) -> tuple[np.ndarray, float]:
    points = [np.array([i, j, n - i - j]) / n for i in range(n + 1) for j in range(n + 1 - i)]
    values = [exact_values(p, a, r).min() for p in points]
    best = int(np.argmax(values))
    return points[best], values[best]


def test_all_responses_with_a_flat_proposal_give_the_exact_expectation():
    a, r = enumerable(0)
    w = np.array([0.2, 0.3, 0.5])
    values, _ = estimate(w, a, np.zeros(a.shape[:2]), r)
    np.testing.assert_allclose(values, exact_values(w, a, r), atol=1e-12)


def test_jacobian_is_the_derivative():
    a, r = enumerable(1)
    proposal = np.random.default_rng(2).normal(size=a.shape[:2])
    w, eps = np.array([0.2, 0.3, 0.5]), 1e-6

    def values(x):
        return estimate(x, a, proposal, r)[0]

    numeric = np.array([(values(w + eps * e) - values(w - eps * e)) / (2 * eps) for e in np.eye(3)]).T
    np.testing.assert_allclose(estimate(w, a, proposal, r)[1], numeric, atol=1e-6)


def test_importance_weights_against_the_mixture_itself_are_uniform():
    a, _ = enumerable(3)
    w = np.array([0.6, 0.1, 0.3])
    z = a @ w
    own = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log pi_lambda, normalised
    np.testing.assert_allclose(importance_weights(w, a, own), 1 / a.shape[1])
    assert Samples(a, own, np.zeros(a.shape[:2] + (1,))).ess(w) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(6))
def test_judged_saddle_finds_the_grid_maximiser(seed):
    """Not concave: the start is chosen on a grid (best_start), mirror prox polishes it, the
    output is the best iterate. Every response listed, so the sample objective is exact."""
    a, r = enumerable(seed)
    target, value = grid_max(a, r)
    result = fit_round(Samples(a, np.zeros(a.shape[:2]), r), 500, 0.3, 0.3, around=np.full(3, 1 / 3))
    assert result.objective == pytest.approx(value, abs=2e-3), (result.weights, target)
    assert result.objective == pytest.approx(exact_values(np.array(result.weights), a, r).min(), abs=1e-12)


def test_best_start_ignores_points_the_samples_cannot_judge():
    """Samples drawn at one vertex say nothing about the others (ESS ~ 1 of 30 there)."""
    a, r = enumerable(4)
    near = np.array([1.0, 0.0, 0.0])
    z = a @ near
    proposal = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    samples = Samples(a * np.array([1, 40, 40]), proposal, r)  # far policies: their weights collapse
    start = best_start(samples, near)
    assert samples.ess(start) >= 0.05


def test_win_probabilities_count_ties_half_and_leave_an_answer_out_of_its_own_pool():
    pool = np.array([[[1.0], [2.0], [2.0]]])  # one prompt, three answers, one objective
    own = win_probabilities(pool, pool, np.array([True]), pool_is_samples=True)
    np.testing.assert_allclose(own[0, :, 0], [0.0, 0.75, 0.75])
    lower = win_probabilities(np.array([[[1.5]]]), pool, np.array([False]), pool_is_samples=False)
    np.testing.assert_allclose(lower[0, 0, 0], 2 / 3)


def test_cut_answers_on_a_length_judge_tie_among_themselves_and_lose_to_ended_ones():
    """A length judge's cut answers come in as minus infinity (server.jobs.fit_jobs): compared,
    not subtracted, so two of them tie instead of giving nan."""
    pool = np.array([[[-np.inf], [-50.0]]])  # the reference: one cut answer, one of 50 words
    samples = np.array([[[-np.inf], [-60.0], [-40.0]]])  # cut, longer, shorter
    wins = win_probabilities(samples, pool, np.array([True]), pool_is_samples=False)
    np.testing.assert_allclose(wins[0, :, 0], [0.25, 0.5, 1.0])
    lower = win_probabilities(-samples, -pool, np.array([False]), pool_is_samples=False)
    np.testing.assert_allclose(lower, wins)


def test_the_fit_censors_only_length_judges_cut_answers():
    from scorers import get_scorer
    from server.jobs.component_logprobs import SequenceLogprobs
    from server.jobs.fit_jobs import FitJobs

    job = SimpleNamespace(
        objectives=["short", "happy"], scorers={"short": get_scorer("concise"), "happy": get_scorer("sentiment")}
    )
    answers = [[SequenceLogprobs([1], [0.0], 0, finish_reason=r) for r in ("length", "stop", None)]]
    rewards = np.array([[[-9.0, 0.5], [-3.0, 0.1], [-4.0, 0.2]]])
    censored = FitJobs._censored(job, answers, rewards)
    np.testing.assert_array_equal(censored, [[[-np.inf, 0.5], [-3.0, 0.1], [-4.0, 0.2]]])
    assert rewards[0, 0, 0] == -9.0  # the raw rewards are kept


def test_standardised_against_the_pool_flips_lower_is_better():
    pool = np.array([[[0.0, 10.0], [2.0, 30.0]]])
    out = standardised_against(pool, pool, np.array([True, False]))
    np.testing.assert_allclose(out[0], [[-1.0, 1.0], [1.0, -1.0]])


def test_the_grid_covers_the_simplex():
    for size in (1, 2, 3, 4):
        grid = simplex_grid(size)
        np.testing.assert_allclose(grid.sum(axis=1), 1.0)
        assert len(grid) <= 1500 and (grid >= 0).all()
        assert any(np.allclose(p, np.eye(size)[0]) for p in grid)


def two_token_problem(seed: int, vocab: int = 12, policies: int = 3):
    """Per-token distributions of `policies` over two steps (second given the first), rewards."""
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(policies, vocab)) * 2
    second = rng.normal(size=(policies, vocab, vocab)) * 2
    first -= np.log(np.exp(first).sum(-1, keepdims=True))
    second -= np.log(np.exp(second).sum(-1, keepdims=True))
    return first, second, rng.uniform(size=(vocab * vocab, 2))


def served_values(w, first, second, rewards):
    """E[r] under the per-token product at w, every two-token answer enumerated."""
    step1 = np.exp(w @ first - np.logaddexp.reduce(w @ first))
    mix2 = np.einsum("p,pvu->vu", w, second)
    step2 = np.exp(mix2 - np.logaddexp.reduce(mix2, axis=1, keepdims=True))
    return (step1[:, None] * step2).reshape(-1) @ rewards


def expansion_at(centre, first, second) -> Expansion:
    """What mixer.recording sums for each two-token answer, at centre: log Z_t, E_q[lp], Cov_q[lp]."""
    vocab = first.shape[1]
    terms = []
    for v1 in range(vocab):
        for lp in (first, second[:, v1]):
            scores = centre @ lp
            q = np.exp(scores - np.logaddexp.reduce(scores))
            mean = lp @ q
            terms.append((v1, np.logaddexp.reduce(scores), mean, ((lp - mean[:, None]) * q) @ (lp - mean[:, None]).T))
    normaliser = np.zeros((vocab, vocab))
    gradient = np.zeros((vocab, vocab, len(centre)))
    hessian = np.zeros((vocab, vocab, len(centre), len(centre)))
    for v1, z, g, h in terms:  # each (step, prefix) term belongs to every answer with that prefix
        normaliser[v1] += z
        gradient[v1] += g
        hessian[v1] += h
    p = len(centre)
    return Expansion(centre, normaliser.reshape(1, -1), gradient.reshape(1, -1, p), hessian.reshape(1, -1, p, p))


def test_the_served_expansion_is_exact_at_its_centre_in_value_and_gradient():
    first, second, rewards = two_token_problem(0)
    centre = np.array([0.5, 0.2, 0.3])
    a = (first[:, :, None] + second).reshape(3, -1).T[None]  # (1, V*V, P) sequence log-probs
    flat = np.zeros(a.shape[:2])  # every answer enumerated once: no proposal to divide by
    expansion = expansion_at(centre, first, second)
    values, jacobian = estimate(centre, a, flat, rewards[None], expansion)
    np.testing.assert_allclose(values, served_values(centre, first, second, rewards), atol=1e-12)
    eps = 1e-6
    numeric = np.array(
        [
            (
                served_values(centre + eps * e, first, second, rewards)
                - served_values(centre - eps * e, first, second, rewards)
            )
            / (2 * eps)
            for e in np.eye(3)
        ]
    ).T
    np.testing.assert_allclose(jacobian, numeric, atol=1e-6)
    near = centre + np.array([0.04, -0.02, -0.02])
    close = estimate(near, a, flat, rewards[None], expansion)[0]
    np.testing.assert_allclose(close, served_values(near, first, second, rewards), atol=2e-3)
    sequence = estimate(centre, a, flat, rewards[None])[0]  # the other family: not what is served
    assert np.abs(sequence - values).max() > 10 * np.abs(close - served_values(near, first, second, rewards)).max()
