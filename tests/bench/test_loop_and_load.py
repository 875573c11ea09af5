"""The benchmark's baselines must be fair: the transformers loop computes the same mixture
(left padding included), and the load client counts what the server really sent."""

import math

import pytest

from bench.load import Outcome, Request, closed_loop, open_loop, summarise
from bench.loop import load_models, mixed_greedy
from bench.servers import cli_flags
from bench.workload import poisson_requests
from mixer.manifest import load_manifest

PROMPTS = [[5, 17, 99, 3, 250, 41, 7], [12, 8], [300, 301, 302, 303]]


def test_left_padded_batch_decodes_each_prompt_as_the_mixture(test_manifest, oracle):
    manifest = load_manifest(test_manifest)
    models = load_models([str(c.path) for c in manifest.components])
    weights = [0.2, 0.5, 0.3]
    tokens, logprobs = mixed_greedy(models, weights, PROMPTS, steps=6)
    for prompt, row, row_logprobs in zip(PROMPTS, tokens.tolist(), logprobs.tolist(), strict=True):
        oracle.check_greedy(prompt, weights, row, row_logprobs)


def test_poisson_requests_are_reproducible_and_within_ranges(test_manifest):
    folder = load_manifest(test_manifest).components[0].path
    first = poisson_requests(folder, 20, rate=4.0, prompt_tokens=(3, 9), output_tokens=(2, 5))
    assert first == poisson_requests(folder, 20, rate=4.0, prompt_tokens=(3, 9), output_tokens=(2, 5))
    arrivals = [r.arrival for r in first]
    assert arrivals[0] == 0 and arrivals == sorted(arrivals)
    assert all(3 <= len(r.prompt) <= 9 and 2 <= r.max_tokens <= 5 for r in first)
    assert 20 / 4.0 / 4 < arrivals[-1] < 20 / 4.0 * 4  # about count / rate


def test_summary_statistics():
    outcomes = [
        Outcome(arrival=0.0, sent=0.0, done=2.0, chunk_times=[0.5, 1.0, 2.0], output_tokens=3),
        Outcome(arrival=1.0, sent=1.5, done=4.0, chunk_times=[2.0, 3.0, 4.0], output_tokens=3),
    ]
    summary = summarise(outcomes)
    assert summary["wall_s"] == 4.0 and summary["tokens_per_s"] == 1.5 and summary["requests_per_s"] == 0.5
    assert summary["latency_s"]["p50"] == 2.5
    assert summary["ttft_ms"]["p50"] == 500.0
    assert math.isclose(summary["itl_ms"]["p50"], 1000.0)
    assert "ttft_ms" not in summarise([Outcome(arrival=0.0, sent=0.0, done=1.0, output_tokens=1)])
    one_token = summarise([Outcome(arrival=0.0, sent=0.0, done=0.2, chunk_times=[0.1], output_tokens=1)])
    assert one_token["ttft_ms"]["p50"] == 100.0 and "itl_ms" not in one_token
    pooled = summarise(outcomes[:1], outcomes[1:])  # rounds: their walls add up (2 + 3 s)
    assert pooled["wall_s"] == 5.0 and pooled["tokens_per_s"] == 6 / 5 and pooled["ttft_ms"]["p50"] == 500.0


def test_engine_arguments_become_vllm_serve_flags():
    flags = cli_flags(
        {"model": "/m", "dtype": "float32", "enforce_eager": True, "enable_x": False, "kv": None, "names": ["a", "b"]}
    )
    assert flags == ["--model", "/m", "--dtype", "float32", "--enforce-eager", "--no-enable-x", "--names", "a", "b"]


@pytest.mark.parametrize("loop", ["open", "closed"])
def test_load_client_streams_exact_token_counts(server, loop):
    lengths = [3, 5, 4]
    requests = [
        Request(prompt=p, max_tokens=n, arrival=0.2 * i) for i, (p, n) in enumerate(zip(PROMPTS, lengths, strict=True))
    ]
    if loop == "open":
        outcomes = open_loop(server.url, "test-mix", requests)
    else:
        outcomes = closed_loop(server.url, "test-mix", requests, concurrency=2)
    assert sorted(o.output_tokens for o in outcomes) == [3, 4, 5]
    for outcome in outcomes:
        # A chunk usually holds one token; a consumer that falls behind may get several at once.
        assert 1 <= len(outcome.chunk_times) <= outcome.output_tokens
        assert outcome.arrival <= outcome.sent + 0.05 and outcome.ttft > 0 and outcome.done >= outcome.chunk_times[-1]
