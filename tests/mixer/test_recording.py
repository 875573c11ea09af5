"""The recorder's bookkeeping, on plain tensors (the engine-level check is
tests/server/test_scoring.py against a transformers loop)."""

import pytest
import torch

from mixer.recording import Recorder


def step(values: list[list[float]]) -> torch.Tensor:
    return torch.tensor(values)  # (C, V)


def test_sampled_tokens_are_added_once_known():
    recorder, output = Recorder(), []
    recorder.start("k", output, None, components=2)
    recorder.observe("k", output, step([[-1.0, -2.0, -3.0], [-0.5, -0.6, -0.7]]))
    output.append(2)  # the engine chose token 2
    recorder.observe("k", output, step([[-4.0, -5.0, -6.0], [-1.5, -1.6, -1.7]]))
    output.append(0)
    result = recorder.take(["k"])["k"][0]
    assert result["token_ids"] == [2, 0]
    assert result["logprobs"] == pytest.approx([-3.0 + -4.0, -0.7 + -1.5])
    assert recorder.take(["k"]) == {}


def test_a_step_whose_token_never_arrives_is_replaced():
    recorder, output = Recorder(), []
    recorder.start("k", output, [1], components=1)
    assert recorder.observe("k", output, step([[-9.0, -9.0]])) == 1  # partial prefill: token discarded
    assert recorder.observe("k", output, step([[-1.0, -2.0]])) == 1
    output.append(1)
    assert recorder.take(["k"])["k"] == [{"logprobs": [-2.0], "mixtures": [], "expansion": None, "token_ids": [1]}]


def test_forcing_stops_after_the_given_tokens_and_unknown_keys_are_ignored():
    recorder, output = Recorder(), [5]
    recorder.start("k", output, [5], components=1)
    assert recorder.observe("k", output, step([[-1.0] * 6])) is None
    assert recorder.observe("gone", output, step([[-1.0]])) is None


def test_children_of_one_request_share_the_key_but_not_the_recording():
    recorder, first, second = Recorder(), [], []
    recorder.start("k", first, None, components=1)
    recorder.start("k", second, None, components=1)
    recorder.start("k", first, None, components=1)  # re-added after preemption
    recorder.observe("k", first, step([[-1.0, -2.0]]))
    recorder.observe("k", second, step([[-3.0, -4.0]]))
    first.append(0)
    second.append(1)
    assert recorder.take(["k"])["k"] == [
        {"logprobs": [-1.0], "mixtures": [], "expansion": None, "token_ids": [0]},
        {"logprobs": [-4.0], "mixtures": [], "expansion": None, "token_ids": [1]},
    ]


def test_recorded_mixtures_are_the_served_mixtures_log_probs():
    """Beside the components, each named mixture's log-prob of the token: log_softmax of the
    weighted component log-probs (mixer.math), sampled and forced alike."""
    first = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]]), dim=-1)
    second = torch.log_softmax(torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]]), dim=-1)
    mixtures = [[0.5, 0.5], [0.25, 0.75]]
    recorder, output = Recorder(), []
    recorder.start("k", output, None, components=2, mixtures=mixtures)
    recorder.observe("k", output, first)
    output.append(1)
    forced_output = []
    recorder.start("f", forced_output, [2], components=2, mixtures=mixtures)
    assert recorder.observe("f", forced_output, second) == 2
    forced_output.append(2)
    recorder.observe("k", output, second)
    output.append(0)

    def mixed(logprobs, weights):
        return torch.log_softmax(weights[0] * logprobs[0] + weights[1] * logprobs[1], dim=-1)

    sampled = recorder.take(["k"])["k"][0]
    assert sampled["logprobs"] == pytest.approx([float(first[0, 1] + second[0, 0]), float(first[1, 1] + second[1, 0])])
    expected = [float(mixed(first, w)[1] + mixed(second, w)[0]) for w in mixtures]
    assert sampled["mixtures"] == pytest.approx(expected, abs=1e-6)
    forced = recorder.take(["f"])["f"][0]
    assert forced["mixtures"] == pytest.approx([float(mixed(second, w)[2]) for w in mixtures], abs=1e-6)


def test_recorded_mixtures_at_a_temperature_are_the_tempered_distribution():
    logprobs = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]]), dim=-1)
    recorder, output = Recorder(), []
    recorder.start("k", output, None, components=2, mixtures=[[0.5, 0.5]], temperature=0.7)
    recorder.observe("k", output, logprobs)
    output.append(2)
    mixed = torch.log_softmax(0.5 * logprobs[0] + 0.5 * logprobs[1], dim=-1)
    expected = float(torch.log_softmax(mixed / 0.7, dim=-1)[2])
    assert recorder.take(["k"])["k"][0]["mixtures"] == pytest.approx([expected], abs=1e-6)


def test_the_expansion_sums_each_steps_normaliser_and_its_derivatives():
    """log Z_t(mu) = logsumexp_v mu . log pi(v), its gradient E_q[log pi] and Hessian Cov_q[log pi]
    (q the step's served distribution at mu = w / tau), summed over the steps that produced a token."""
    steps = [
        torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]]), dim=-1),
        torch.log_softmax(torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]]), dim=-1),
    ]
    recorder, output = Recorder(), []
    recorder.start("k", output, None, components=2, temperature=0.5, expansion=[0.25, 0.75])
    recorder.observe("k", output, steps[0])
    recorder.observe("k", output, steps[0])  # a step whose token never came (replaced)
    output.append(1)
    recorder.observe("k", output, steps[1])
    output.append(0)
    mu = torch.tensor([0.25, 0.75], dtype=torch.float64) / 0.5
    expected = torch.zeros(1 + 2 + 4, dtype=torch.float64)
    for lp in steps:
        lp = lp.double()
        scores = mu @ lp
        q = torch.softmax(scores, dim=0)
        mean = lp @ q
        second = (lp * q) @ lp.t() - torch.outer(mean, mean)
        expected += torch.cat([torch.logsumexp(scores, 0).reshape(1), mean, second.reshape(-1)])
    assert recorder.take(["k"])["k"][0]["expansion"] == pytest.approx(expected.tolist(), abs=1e-9)
