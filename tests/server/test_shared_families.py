"""The shared base on each decoder family users bring (Qwen2, Qwen3, Mistral; Llama is the
tests' own LoRA mixture, run by every `both_modes` module): a batch mixing every kind of
request, fit recording, prefix-cache reuse across needed sets and a structured output, each
equal to the transformers + peft loop with the adapters unmerged."""

import asyncio
import re

import httpx
import pytest
import yaml
from transformers import AutoTokenizer

from tests.completions import assert_scores_match, completion_body, token_ids
from tests.families import FAMILIES, build_family_mixture
from tests.oracle import MixtureOracle
from tests.server_process import ADMIN_TOKEN, ServerProcess

PROMPTS = ["Life is", "Never trust a computer"]
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# (model, mixture weights or None, the weights the row is served with)
KINDS = [
    ("mix", None, {"alpha": 0.5, "beta": 0.5}),
    ("mix", {"alpha": 0.8, "beta": 0.2}, {"alpha": 0.8, "beta": 0.2}),
    ("alpha", None, {"alpha": 1.0}),
    ("beta", None, {"beta": 1.0}),
    ("ref", None, {"ref": 1.0}),
    ("soup", None, {"soup": 1.0}),
]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, test_manifest):
    return request.param, build_family_mixture(test_manifest.parent, request.param)


@pytest.fixture(scope="module")
def served(family, tmp_path_factory):
    name, manifest = family
    data = tmp_path_factory.mktemp(f"{name}-server")
    with ServerProcess(manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def oracle(family) -> MixtureOracle:
    return MixtureOracle(family[1])


@pytest.fixture(scope="module")
def tokenizer(family):
    return AutoTokenizer.from_pretrained(family[1].parent / "ref")


def body(family, prompt: list[int], model: str, weights: dict | None, **extra) -> dict:
    mixture = {"mixture": {"weights": weights}} if weights else {}
    model_id = f"{family[0]}-mix" if model == "mix" else model
    return completion_body(prompt, **{"model": model_id, "max_tokens": 12, **mixture, **extra})


def test_served_on_the_shared_base(served, family):
    described = httpx.get(f"{served.url}/admin/mixture", headers=HEADERS).json()
    assert described["lora_mode"]["mode"] == "shared"
    held = {c["name"]: c["weight_bytes"] for c in described["components"]}
    # a soup's delta per layer holds both ingredients' factors, over the outputs either adapts
    assert held["alpha"] + held["beta"] <= held["soup"] < held["ref"] / 10


def test_a_batch_of_every_kind_equals_the_loop(served, family, oracle, tokenizer):
    prompts = [tokenizer(text)["input_ids"] for text in PROMPTS]

    async def run_all():
        async with httpx.AsyncClient(base_url=served.url, timeout=120) as client:
            requests = [
                client.post("/v1/completions", json=body(family, p, model, weights))
                for p in prompts
                for model, weights, _ in KINDS
            ]
            return await asyncio.gather(*requests)

    answers = iter(asyncio.run(run_all()))
    served_tokens = {}
    for prompt in prompts:
        for model, weights, expected in KINDS:
            response = next(answers)
            assert response.status_code == 200, response.text
            lp = response.json()["choices"][0]["logprobs"]
            oracle.check_greedy(prompt, oracle.vector(expected), token_ids(lp), lp["token_logprobs"])
            served_tokens[(tuple(prompt), model, str(weights))] = token_ids(lp)
    for prompt in prompts:  # the adapters really change the reference's answers
        reference = served_tokens[(tuple(prompt), "ref", "None")]
        assert all(served_tokens[(tuple(prompt), m, "None")] != reference for m in ("alpha", "beta"))


def test_fit_recording_equals_the_loop(served, oracle, tokenizer):
    with httpx.Client(base_url=served.url, headers=HEADERS, timeout=120) as admin:
        samples = admin.post("/admin/sample", json={"prompts": PROMPTS[:1], "n": 3, "max_tokens": 10, "seed": 5})
        for sample in samples.json()["data"][0]["samples"]:
            assert_scores_match(oracle, tokenizer(PROMPTS[0])["input_ids"], sample)
        items = [{"prompt": PROMPTS[1], "response": list(range(40, 60))}]
        scored = admin.post("/admin/score", json={"items": items}).json()["data"][0]
        assert_scores_match(oracle, tokenizer(PROMPTS[1])["input_ids"], scored)


def test_prefix_cache_reuse_across_needed_sets(served, family, oracle, tokenizer):
    """A 300-token prompt (three KV blocks; longer than Mistral's window) served to one policy,
    the mixture, the other policy and the first again: each request reuses only blocks written
    for its own components."""
    text = " ".join(f"the {i}th lantern over the harbour" for i in range(60))
    prompt = tokenizer(text)["input_ids"][:300]
    assert len(prompt) == 300
    with httpx.Client(base_url=served.url, timeout=120) as http:
        for model, weights, expected in [KINDS[2], KINDS[0], KINDS[3], KINDS[2]]:
            lp = http.post("/v1/completions", json=body(family, prompt, model, weights, max_tokens=6)).json()
            lp = lp["choices"][0]["logprobs"]
            # 1e-3, not 1e-4: a 300-token prefill in fp32 sums in orders that differ between
            # vLLM's CPU kernels and torch's by CPU (one CI machine: 4.2e-4 at the first request's
            # first step, before any reuse); a block reused from another component's KV would
            # be off by tenths.
            oracle.check_greedy(prompt, oracle.vector(expected), token_ids(lp), lp["token_logprobs"], tol=1e-3)


def test_a_structured_output_is_the_masked_mixture(served, family, oracle, tokenizer):
    """Greedy under a four-digit regex: every step is the mixture's best digit, its logprob the
    mixture renormalised over the digits (the loop, masked by hand)."""
    prompt = tokenizer("The year is")["input_ids"]
    digits = [t for t in range(len(tokenizer)) if re.fullmatch(r"[0-9]", tokenizer.decode([t]))]
    weights = {"alpha": 0.3, "beta": 0.7}
    request = body(family, prompt, "mix", weights, max_tokens=4, structured_outputs={"regex": "[0-9]{4}"})
    request.pop("ignore_eos")
    lp = httpx.post(f"{served.url}/v1/completions", json=request, timeout=120).json()["choices"][0]["logprobs"]
    ids = list(prompt)
    for token, logprob in zip(token_ids(lp), lp["token_logprobs"], strict=True):
        expected = oracle.next_logprobs(ids, oracle.vector(weights))[digits]
        masked = expected - expected.logsumexp(0)
        assert token == digits[int(masked.argmax())]
        assert abs(float(masked.max()) - logprob) < 1e-4
        ids.append(token)
    assert len(ids) == len(prompt) + 4


def test_tensor_parallel_serves_what_one_process_serves(served, family, tokenizer, tmp_path_factory):
    """TP=2 on Qwen3: its single KV head is replicated on both ranks, its four query heads and
    every adapter's factors split as their base layers are (column-parallel B rows,
    row-parallel A columns)."""
    name, manifest = family
    if name != "qwen3":
        pytest.skip("TP=2 is checked on qwen3 (replicated KV head, q/k norms): one more server, not three")
    spec = yaml.safe_load(manifest.read_text()) | {"tensor_parallel_size": 2}
    tp2_manifest = manifest.with_name("manifest-tp2.yaml")
    tp2_manifest.write_text(yaml.safe_dump(spec, sort_keys=False))
    data = tmp_path_factory.mktemp("qwen3-tp2")
    prompt = tokenizer(PROMPTS[1])["input_ids"]
    with ServerProcess(tp2_manifest, data, data / "server.log", env={"VLLM_CPU_OMP_THREADS_BIND": "0|1"}) as tp2:
        for model, weights, _ in KINDS:
            request = body(family, prompt, model, weights, logprobs=5)
            one = httpx.post(f"{served.url}/v1/completions", json=request, timeout=120).json()["choices"][0]
            two = httpx.post(f"{tp2.url}/v1/completions", json=request, timeout=120).json()["choices"][0]
            one, two = one["logprobs"], two["logprobs"]
            assert two["tokens"] == one["tokens"], model
            assert two["token_logprobs"] == pytest.approx(one["token_logprobs"], abs=1e-4)
            for top_one, top_two in zip(one["top_logprobs"], two["top_logprobs"], strict=True):
                assert top_two.keys() == top_one.keys()
                assert list(top_two.values()) == pytest.approx(list(top_one.values()), abs=1e-4)
