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
    recorder.observe("k", step([[-1.0, -2.0, -3.0], [-0.5, -0.6, -0.7]]))
    output.append(2)  # the engine chose token 2
    recorder.observe("k", step([[-4.0, -5.0, -6.0], [-1.5, -1.6, -1.7]]))
    output.append(0)
    result = recorder.take(["k"])["k"]
    assert result["token_ids"] == [2, 0]
    assert result["logprobs"] == pytest.approx([-3.0 + -4.0, -0.7 + -1.5])
    assert recorder.take(["k"]) == {}


def test_a_step_whose_token_never_arrives_is_replaced():
    recorder, output = Recorder(), []
    recorder.start("k", output, [1], components=1)
    assert recorder.observe("k", step([[-9.0, -9.0]])) == 1  # partial prefill: token discarded
    assert recorder.observe("k", step([[-1.0, -2.0]])) == 1
    output.append(1)
    assert recorder.take(["k"])["k"] == {"logprobs": [-2.0], "token_ids": [1]}


def test_forcing_stops_after_the_given_tokens_and_unknown_keys_are_ignored():
    recorder, output = Recorder(), [5]
    recorder.start("k", output, [5], components=1)
    assert recorder.observe("k", step([[-1.0] * 6])) is None
    assert recorder.observe("gone", step([[-1.0]])) is None
