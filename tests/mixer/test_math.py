"""mixer.math against exact values and a naive per-row loop."""

import math

import torch

from mixer.math import component_logprobs, mix_logprobs, mixed_hidden


def naive_mix(logprobs: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """One row: log_softmax(sum_k w_k * lp_k), written out term by term."""
    total = torch.zeros(logprobs.shape[-1])
    for k, w in enumerate(weights):
        if w:
            total += w * logprobs[k]
    return torch.log_softmax(total, dim=-1)


def test_one_hot_weights_return_that_component():
    logprobs = component_logprobs(torch.randn(3, 4, 11))
    for k in range(3):
        weights = torch.zeros(3)
        weights[k] = 1
        torch.testing.assert_close(mix_logprobs(logprobs, weights), logprobs[k])


def test_two_point_example_by_hand():
    # p1 = (0.5, 0.5), p2 = (0.9, 0.1), equal weights: geometric mean (sqrt .45, sqrt .05), normalised.
    logprobs = torch.tensor([[[math.log(0.5), math.log(0.5)]], [[math.log(0.9), math.log(0.1)]]])
    mixed = mix_logprobs(logprobs, torch.tensor([0.5, 0.5])).exp()[0]
    a, b = math.sqrt(0.45), math.sqrt(0.05)
    torch.testing.assert_close(mixed, torch.tensor([a / (a + b), b / (a + b)]))


def test_per_row_weights_match_the_naive_loop():
    torch.manual_seed(0)
    logprobs = component_logprobs(torch.randn(3, 5, 17) * 3)
    rows = [[0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.8, 0.2]]
    mixed = mix_logprobs(logprobs, torch.tensor(rows))
    for b, weights in enumerate(rows):
        torch.testing.assert_close(mixed[b], naive_mix(logprobs[:, b], weights))


def test_result_is_normalised_fp32():
    logprobs = component_logprobs(torch.randn(2, 3, 9, dtype=torch.bfloat16))
    mixed = mix_logprobs(logprobs, torch.tensor([0.3, 0.7]))
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed.exp().sum(-1), torch.ones(3))


def test_zero_weight_component_with_masked_tokens_does_not_poison():
    logprobs = component_logprobs(torch.randn(2, 1, 5))
    logprobs[0, 0, 2] = -math.inf  # a token the unused component rules out
    mixed = mix_logprobs(logprobs, torch.tensor([0.0, 1.0]))
    assert torch.isfinite(mixed).all()
    torch.testing.assert_close(mixed, logprobs[1])


def test_a_single_component_run_at_full_weight_is_its_own_log_probs():
    logprobs = component_logprobs(torch.randn(1, 4, 11))
    expected = torch.stack([naive_mix(logprobs[:, row], [1.0]) for row in range(4)])
    torch.testing.assert_close(mix_logprobs(logprobs, torch.ones(4, 1)), expected)
    torch.testing.assert_close(mix_logprobs(logprobs, torch.ones(1)), expected)


def test_one_head_row_on_the_mixed_hidden_state_is_the_mixture():
    hidden, head = torch.randn(3, 4, 8, dtype=torch.float64), torch.randn(8, 13, dtype=torch.float64)
    weights = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.6, 0.4, 0.0]])
    mixed = torch.log_softmax(mixed_hidden(hidden.float(), weights).double() @ head, dim=-1)
    by_rule = mix_logprobs(component_logprobs(hidden @ head), weights)
    torch.testing.assert_close(mixed.float(), by_rule, atol=1e-5, rtol=1e-5)


def test_a_zero_weight_component_changes_no_bit_of_the_mixed_hidden_state():
    hidden = torch.randn(3, 5, 16)
    weights = torch.tensor([[0.0, 0.3, 0.7]] * 5)
    assert torch.equal(mixed_hidden(hidden, weights), mixed_hidden(hidden[1:], weights[:, 1:]))
