"""Mixtures the shared base cannot serve exactly are served merged, say so, and stay exact:
a LoRA adapter beside a full-checkpoint policy, and an adapter on lm_head (of a model whose
embeddings are tied), alone and in a mixture, equal peft with the adapter unmerged (greedy
tokens equal, logprobs within 1e-4, fp32), through a real server."""

import httpx
import pytest
from transformers import AutoTokenizer

from tests.adapters import build_adapter_mixture, build_lm_head_mixture
from tests.completions import completion_body, token_ids
from tests.oracle import MixtureOracle
from tests.server_process import ADMIN_TOKEN, ServerProcess

PROMPTS = ["Life is", "The best way to", "Never trust a computer"]
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def adapter_manifest(test_manifest):
    return build_adapter_mixture(test_manifest.parent)


@pytest.fixture(scope="module")
def adapter_server(adapter_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("adapter-server")
    with ServerProcess(adapter_manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def head_manifest(test_manifest):
    return build_lm_head_mixture(test_manifest.parent)


@pytest.fixture(scope="module")
def head_server(head_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("head-server")
    with ServerProcess(head_manifest, data, data / "server.log") as process:
        yield process


def check_served(server, manifest, model: str, weights: dict | None, expected: dict) -> None:
    oracle = MixtureOracle(manifest)  # peft with the adapters unmerged, in memory
    tokenizer = AutoTokenizer.from_pretrained(manifest.parent / "ref")
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for text in PROMPTS:
            prompt = tokenizer(text)["input_ids"]
            body = completion_body(prompt, model=model, **({"mixture": {"weights": weights}} if weights else {}))
            response = http.post("/v1/completions", json=body)
            assert response.status_code == 200, response.text
            logprobs = response.json()["choices"][0]["logprobs"]
            oracle.check_greedy(prompt, oracle.vector(expected), token_ids(logprobs), logprobs["token_logprobs"])


def assert_served_merged(server, reason: str) -> None:
    described = httpx.get(f"{server.url}/admin/mixture", headers=HEADERS).json()
    assert described["lora_mode"]["mode"] == "merged" and described["lora_mode"]["requested"] == "auto"
    assert reason in described["lora_mode"]["reason"]
    log = server.log.read_text()
    assert "components served as merged sub-models: " in log and reason in log  # the one log line


@pytest.mark.parametrize(
    "model,weights,expected",
    [
        ("gamma", None, {"gamma": 1.0}),
        ("adapter-mix", None, {"alpha": 0.5, "gamma": 0.5}),
        ("adapter-mix", {"alpha": 0.2, "gamma": 0.8}, {"alpha": 0.2, "gamma": 0.8}),
    ],
)
def test_an_adapter_beside_a_checkpoint_serves_like_peft(adapter_server, adapter_manifest, model, weights, expected):
    check_served(adapter_server, adapter_manifest, model, weights, expected)


def test_a_full_checkpoint_policy_serves_merged_and_says_so(adapter_server):
    assert_served_merged(adapter_server, "component 'alpha' is a full checkpoint, not a LoRA adapter")


@pytest.mark.parametrize(
    "model,weights,expected",
    [
        ("head", None, {"head": 1.0}),
        ("head-mix", None, {"alpha": 0.5, "head": 0.5}),
        ("head-mix", {"alpha": 0.2, "head": 0.8}, {"alpha": 0.2, "head": 0.8}),
    ],
)
def test_an_lm_head_adapter_serves_like_peft(head_server, head_manifest, model, weights, expected):
    check_served(head_server, head_manifest, model, weights, expected)


def test_an_lm_head_adapter_serves_merged_and_says_so(head_server):
    assert_served_merged(head_server, "adapter 'head': it changes 'lm_head'")


def test_adapter_component_is_listed_with_its_adapter(adapter_server, adapter_manifest):
    with httpx.Client(base_url=adapter_server.url, timeout=30) as http:
        ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
        assert ids[:4] == ["adapter-mix", "ref", "alpha", "gamma"]
        mixture = http.get("/admin/mixture", headers=HEADERS).json()
    gamma = next(c for c in mixture["components"] if c["name"] == "gamma")
    assert gamma["adapter"] == str((adapter_manifest.parent / "gamma-lora").resolve())
