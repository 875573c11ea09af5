"""The served distribution equals the mixture computed by a plain transformers loop."""

import asyncio

import httpx
import pytest
from transformers import AutoTokenizer

from tests.completions import completion_body, token_ids

# on full sub-models, on the shared base, on the shared base with torch's delta GEMMs, and on the
# shared base compiled (conftest)
pytestmark = pytest.mark.both_modes(modes=["checkpoints", "lora-shared", "lora-torch-deltas", "lora-compiled"])


PROMPT_TEXTS = ["Life is", "The best way to", "Never trust a computer"]


@pytest.fixture(scope="module")
def prompts(test_manifest) -> list[list[int]]:
    tokenizer = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")
    return [tokenizer(t)["input_ids"] for t in PROMPT_TEXTS]


def test_the_shared_base_runs_its_deltas_as_configured(server, mode):
    if mode == "checkpoints":
        pytest.skip("full sub-models have no deltas")
    log = server.log.read_text()
    matmul = "torch_matmul" if mode == "lora-torch-deltas" else "engine_matmul"
    how = "compiled" if mode == "lora-compiled" else "eager"
    assert f"one down GEMM for all components, up in the base GEMM, by {matmul}, {how}" in log


@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.8, 0.2)])
def test_default_weights_greedy_match_the_loop(admin, http, oracle, prompts, weights):
    named = {"alpha": weights[0], "beta": weights[1]}
    admin.put("/admin/weights", json={"weights": named}).raise_for_status()
    for prompt in prompts:
        choice = http.post("/v1/completions", json=completion_body(prompt)).json()["choices"][0]
        lp = choice["logprobs"]
        oracle.check_greedy(prompt, oracle.vector(named), token_ids(lp), lp["token_logprobs"])


def test_per_request_weights_mixed_in_one_batch_with_defaults(admin, server, oracle, prompts):
    admin.put("/admin/weights", json={"weights": {"alpha": 0.3, "beta": 0.7}}).raise_for_status()
    cases = [
        ("test-mix", None, {"alpha": 0.3, "beta": 0.7}),
        ("test-mix", {"alpha": 0.8, "beta": 0.2}, {"alpha": 0.8, "beta": 0.2}),
        ("test-mix", {"alpha": 1.0}, {"alpha": 1.0}),
        ("alpha", None, {"alpha": 1.0}),
        ("ref", None, {"ref": 1.0}),
        ("test-mix", {"alpha": 2.0, "beta": 6.0}, {"alpha": 0.25, "beta": 0.75}),
    ]

    async def run_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            requests = []
            for prompt in prompts:
                for model, weights, _ in cases:
                    extra = {"model": model, "max_tokens": 24}
                    if weights is not None:
                        extra["mixture"] = {"weights": weights}
                    requests.append(client.post("/v1/completions", json=completion_body(prompt, **extra)))
            return await asyncio.gather(*requests)

    responses = iter(asyncio.run(run_all()))
    for prompt in prompts:
        for _, _, expected in cases:
            lp = next(responses).json()["choices"][0]["logprobs"]
            oracle.check_greedy(prompt, oracle.vector(expected), token_ids(lp), lp["token_logprobs"])


@pytest.mark.parametrize("weights", [None, {"alpha": 0.8, "beta": 0.2}])
def test_sampled_token_logprobs_match_the_loop(http, oracle, prompts, weights):
    for seed, prompt in enumerate(prompts):
        extra = {"temperature": 1.0, "seed": seed, "max_tokens": 12}
        if weights:
            extra["mixture"] = {"weights": weights}
        lp = http.post("/v1/completions", json=completion_body(prompt, **extra)).json()["choices"][0]["logprobs"]
        vector = oracle.vector(weights or {"alpha": 0.5, "beta": 0.5})
        oracle.check_sampled(prompt, vector, token_ids(lp), lp["token_logprobs"])


def test_seeded_sampling_is_reproducible(http, prompts):
    body = completion_body(prompts[0], temperature=1.0, seed=7)
    first = http.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]["tokens"]
    second = http.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]["tokens"]
    assert first == second


@pytest.mark.parametrize(
    "model,weights", [("test-mix", None), ("test-mix", {"alpha": 0.9, "beta": 0.1}), ("beta", None)]
)
def test_echo_prompt_logprobs_use_the_request_mixture(http, oracle, prompts, model, weights):
    prompt = prompts[2]
    extra = {"model": model, "echo": True, "max_tokens": 0}
    if weights:
        extra["mixture"] = {"weights": weights}
    choice = http.post("/v1/completions", json=completion_body(prompt, **extra)).json()["choices"][0]
    lp = choice["logprobs"]
    assert token_ids(lp) == prompt and lp["token_logprobs"][0] is None
    expected_weights = weights or ({"beta": 1.0} if model == "beta" else {"alpha": 0.5, "beta": 0.5})
    vector = oracle.vector(expected_weights)
    for i in range(1, len(prompt)):
        expected = float(oracle.next_logprobs(prompt[:i], vector)[prompt[i]])
        assert abs(expected - lp["token_logprobs"][i]) < 1e-4
