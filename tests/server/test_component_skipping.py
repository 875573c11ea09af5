"""A step runs only the components its requests need; every row still equals the
transformers loop, whatever else shares its batch, the prefix cache or a change of defaults."""

import asyncio
import json

import httpx
import pytest
from transformers import AutoTokenizer

from tests.completions import assert_scores_match, completion_body, token_ids
from tests.jobs import wait_for_job

pytestmark = pytest.mark.both_modes  # on full sub-models and on the shared base (conftest)

PROMPT_TEXTS = ["Life is", "The best way to", "Never trust a computer"]

# (model, mixture weights or None, the weights the row must be served with)
POLICIES_ONLY = [
    ("test-mix", None, {"alpha": 0.5, "beta": 0.5}),  # the default mixture: no reference
    ("test-mix", {"alpha": 0.8, "beta": 0.2}, {"alpha": 0.8, "beta": 0.2}),
    ("alpha", None, {"alpha": 1.0}),
]
ALPHA_ONLY = [
    ("alpha", None, {"alpha": 1.0}),
    ("test-mix", {"alpha": 3.0}, {"alpha": 1.0}),
]
EVERYTHING = [
    *POLICIES_ONLY,
    ("test-mix", {"beta": 1.0}, {"beta": 1.0}),
    ("beta", None, {"beta": 1.0}),
    ("ref", None, {"ref": 1.0}),
]


@pytest.fixture(scope="module")
def tokenizer(test_manifest):
    return AutoTokenizer.from_pretrained(test_manifest.parent / "ref")


@pytest.fixture(scope="module")
def prompts(tokenizer) -> list[list[int]]:
    return [tokenizer(t)["input_ids"] for t in PROMPT_TEXTS]


def served_body(prompt: list[int], model: str, weights: dict | None, **extra) -> dict:
    body = completion_body(prompt, **{"model": model, "max_tokens": 16, **extra})
    if weights is not None:
        body["mixture"] = {"weights": weights}
    return body


def check_choice(oracle, prompt, expected: dict, choice: dict) -> None:
    lp = choice["logprobs"]
    oracle.check_greedy(prompt, oracle.vector(expected), token_ids(lp), lp["token_logprobs"])


def check_echo(oracle, prompt, expected: dict, choice: dict) -> None:
    lp = choice["logprobs"]
    assert token_ids(lp) == prompt
    vector = oracle.vector(expected)
    for i in range(1, len(prompt)):
        assert abs(float(oracle.next_logprobs(prompt[:i], vector)[prompt[i]]) - lp["token_logprobs"][i]) < 1e-4


@pytest.mark.parametrize("cases", [POLICIES_ONLY, ALPHA_ONLY, EVERYTHING], ids=["policies", "alpha", "everything"])
def test_rows_equal_the_loop_in_batches_that_skip_components(admin, server, oracle, prompts, tokenizer, cases):
    """One batch of every case on every prompt, plus an echo row that needs only alpha; the
    'everything' batch also has a fit job and fit sampling (all components, recorded) running
    in it."""
    echo = served_body(prompts[2], "alpha", None, echo=True, max_tokens=0)
    fit = cases is EVERYTHING
    sample_body = {"prompts": PROMPT_TEXTS[:1], "n": 3, "max_tokens": 12, "seed": 11}

    fit_job = None
    if fit:  # started first, so that its sampling shares the batches below
        items = [{"prompt": text} for text in PROMPT_TEXTS]
        options = {"samples_per_prompt": 16, "max_tokens": 24, "iterations": 50, "seed": 4}
        fit_job = admin.post("/admin/fit", json={"items": items, "options": options}).json()["id"]

    async def run_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=120, headers=admin.headers) as client:
            requests = [
                client.post("/v1/completions", json=served_body(prompt, model, weights))
                for prompt in prompts
                for model, weights, _ in cases
            ]
            requests.append(client.post("/v1/completions", json=echo))
            if fit:
                requests.append(client.post("/admin/sample", json=sample_body))
            return await asyncio.gather(*requests)

    responses = iter(asyncio.run(run_all()))
    for prompt in prompts:
        for _, _, expected in cases:
            check_choice(oracle, prompt, expected, next(responses).json()["choices"][0])
    check_echo(oracle, prompts[2], {"alpha": 1.0}, next(responses).json()["choices"][0])
    if fit:
        for sample in next(responses).json()["data"][0]["samples"]:
            assert_scores_match(oracle, prompts[0], sample)
        assert wait_for_job(admin, "fit", fit_job)["phase"] == "succeeded"


def test_prefix_cache_blocks_are_not_shared_across_needed_sets(admin, http, oracle, tokenizer):
    """A prompt longer than two KV blocks (128 tokens each on CPU), served first to one policy
    alone: blocks cached then hold no KV of the other components. Requests that need them
    (the mixture, the other policy, fit sampling) must not reuse those blocks."""
    text = " ".join(f"the {i}th lantern over the harbour" for i in range(60))
    prompt = tokenizer(text)["input_ids"][:300]
    assert len(prompt) == 300
    for model, weights, expected in [
        ("alpha", None, {"alpha": 1.0}),
        ("test-mix", None, {"alpha": 0.5, "beta": 0.5}),
        ("beta", None, {"beta": 1.0}),
        ("alpha", None, {"alpha": 1.0}),  # its own blocks, reused
    ]:
        choice = http.post("/v1/completions", json=served_body(prompt, model, weights, max_tokens=8)).json()
        print(f"served {model} (usage {choice['usage']})")  # shown if the check fails
        check_choice(oracle, prompt, expected, choice["choices"][0])
    body = {"prompts": [prompt], "n": 2, "max_tokens": 6, "seed": 2}
    for sample in admin.post("/admin/sample", json=body).json()["data"][0]["samples"]:
        assert_scores_match(oracle, prompt, sample)


def test_a_running_request_keeps_its_components_when_the_defaults_change(admin, server, oracle, prompts):
    """Admitted with defaults that zero beta, a request needs alpha only; making beta non-zero
    mid-stream changes new requests, not its remaining tokens (nor their KV)."""
    admin.put("/admin/weights", json={"weights": {"alpha": 1.0, "beta": 0.0}}).raise_for_status()
    body = served_body(prompts[1], "test-mix", None, max_tokens=240, stream=True)
    tokens, logprobs = [], []
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            lp = json.loads(line.removeprefix("data: "))["choices"][0]["logprobs"]
            tokens += token_ids(lp)
            logprobs += lp["token_logprobs"]
            if len(tokens) == 4:
                admin.put("/admin/weights", json={"weights": {"alpha": 0.5, "beta": 0.5}}).raise_for_status()
    assert len(tokens) == 240
    oracle.check_greedy(prompts[1], oracle.vector({"alpha": 1.0}), tokens, logprobs)
    after = admin.post("/v1/completions", json=served_body(prompts[1], "test-mix", None)).json()
    check_choice(oracle, prompts[1], {"alpha": 0.5, "beta": 0.5}, after["choices"][0])
