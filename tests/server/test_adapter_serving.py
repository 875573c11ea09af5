"""A LoRA adapter served as a policy equals peft's own merged model, alone and in a mixture
(greedy tokens equal, logprobs within 1e-4, fp32), through a real server."""

import httpx
import pytest
from transformers import AutoTokenizer

from tests.adapters import build_adapter_mixture
from tests.oracle import MixtureOracle
from tests.server_process import ADMIN_TOKEN, ServerProcess

PROMPTS = ["Life is", "The best way to", "Never trust a computer"]


@pytest.fixture(scope="module")
def adapter_manifest(test_manifest):
    return build_adapter_mixture(test_manifest.parent)


@pytest.fixture(scope="module")
def adapter_server(adapter_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("adapter-server")
    with ServerProcess(adapter_manifest, data, data / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def adapter_oracle(adapter_manifest) -> MixtureOracle:
    return MixtureOracle(adapter_manifest)  # merges the adapter with peft, in memory


@pytest.mark.parametrize(
    "model,weights,expected",
    [
        ("gamma", None, {"gamma": 1.0}),
        ("adapter-mix", None, {"alpha": 0.5, "gamma": 0.5}),
        ("adapter-mix", {"alpha": 0.2, "gamma": 0.8}, {"alpha": 0.2, "gamma": 0.8}),
    ],
)
def test_served_adapter_equals_peft_merge(adapter_server, adapter_oracle, adapter_manifest, model, weights, expected):
    tokenizer = AutoTokenizer.from_pretrained(adapter_manifest.parent / "ref")
    with httpx.Client(base_url=adapter_server.url, timeout=120) as http:
        for text in PROMPTS:
            prompt = tokenizer(text)["input_ids"]
            body = {
                "model": model,
                "prompt": prompt,
                "max_tokens": 10,
                "temperature": 0,
                "logprobs": 1,
                "ignore_eos": True,
                "return_tokens_as_token_ids": True,
            }
            if weights is not None:
                body["mixture"] = {"weights": weights}
            response = http.post("/v1/completions", json=body)
            assert response.status_code == 200, response.text
            logprobs = response.json()["choices"][0]["logprobs"]
            tokens = [int(t.removeprefix("token_id:")) for t in logprobs["tokens"]]
            adapter_oracle.check_greedy(prompt, adapter_oracle.vector(expected), tokens, logprobs["token_logprobs"])


def test_adapter_component_is_listed_with_its_adapter(adapter_server, adapter_manifest):
    with httpx.Client(base_url=adapter_server.url, timeout=30) as http:
        ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
        assert ids[:4] == ["adapter-mix", "ref", "alpha", "gamma"]
        mixture = http.get("/admin/mixture", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    gamma = next(c for c in mixture["components"] if c["name"] == "gamma")
    assert gamma["adapter"] == str((adapter_manifest.parent / "gamma-lora").resolve())
