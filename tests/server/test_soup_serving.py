"""Reward soups served as baselines next to the mixture: a one-hot soup serves exactly its
policy's greedy tokens (a checkpoint and a LoRA adapter), a two-policy soup serves the
parameter average computed here, baselines never enter the mixture's weights or scores, and a
pair eval judges a soup as it judges a policy."""

import json

import httpx
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.adapters import build_adapter_mixture
from tests.jobs import wait_for_job
from tests.server_process import ADMIN_TOKEN, ServerProcess

PROMPTS = ["Life is", "The best way to", "Never trust a computer"]
BASELINES = [
    {"name": "soup_alpha", "soup": {"alpha": 1}},
    {"name": "soup_gamma", "soup": {"gamma": 1}},
    {"name": "soup_half", "soup": {"alpha": 0.5, "gamma": 0.5}},
]


@pytest.fixture(scope="module")
def soup_manifest(test_manifest):
    folder = test_manifest.parent
    spec = yaml.safe_load(build_adapter_mixture(folder).read_text()) | {"name": "soup-mix", "baselines": BASELINES}
    path = folder / "soup-mix.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def soup_server(soup_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("soup-server")
    with ServerProcess(soup_manifest, data, data / "server.log") as process:
        yield process


def _greedy(server, model: str, prompt: list[int], tokens: int = 12) -> list[int]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
        response = http.post("/v1/completions", json=body | {"logprobs": 0, "return_tokens_as_token_ids": True})
    assert response.status_code == 200, response.text
    return [int(t.removeprefix("token_id:")) for t in response.json()["choices"][0]["logprobs"]["tokens"]]


@pytest.mark.parametrize(("soup", "policy"), [("soup_alpha", "alpha"), ("soup_gamma", "gamma")])
def test_a_one_hot_soup_serves_its_policy(soup_server, soup_manifest, soup, policy):
    tokenizer = AutoTokenizer.from_pretrained(soup_manifest.parent / "ref")
    for text in PROMPTS:
        prompt = tokenizer(text)["input_ids"]
        assert _greedy(soup_server, soup, prompt) == _greedy(soup_server, policy, prompt)


def test_a_two_policy_soup_serves_the_parameter_average(soup_server, soup_manifest):
    folder = soup_manifest.parent
    tokenizer = AutoTokenizer.from_pretrained(folder / "ref")
    alpha = AutoModelForCausalLM.from_pretrained(folder / "alpha", dtype=torch.float32)
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(folder / "ref", dtype=torch.float32)
    gamma = PeftModel.from_pretrained(base, str(folder / "gamma-lora")).merge_and_unload()
    averaged = {k: 0.5 * v + 0.5 * gamma.state_dict()[k] for k, v in alpha.state_dict().items()}
    alpha.load_state_dict(averaged)
    alpha.eval()
    for text in PROMPTS:
        prompt = tokenizer(text)["input_ids"]
        with torch.no_grad():
            expected = alpha.generate(
                torch.tensor([prompt]), max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0
            )[0, len(prompt) :].tolist()
        assert _greedy(soup_server, "soup_half", prompt) == expected


def test_baselines_are_listed_but_never_mixed_or_scored(soup_server):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=soup_server.url, headers=headers, timeout=120) as http:
        ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
        assert ids[:7] == ["soup-mix", "ref", "alpha", "gamma", "soup_alpha", "soup_gamma", "soup_half"]
        described = http.get("/admin/mixture").json()
        soups = [c for c in described["components"] if c["role"] == "baseline"]
        assert [c["soup"] for c in soups] == [
            {"alpha": 1.0, "gamma": 0.0},
            {"alpha": 0.0, "gamma": 1.0},
            {"alpha": 0.5, "gamma": 0.5},
        ]
        assert described["default_weights"] == {"alpha": 0.5, "gamma": 0.5}
        bad = http.put("/admin/weights", json={"weights": {"soup_half": 1}})
        assert bad.status_code == 400 and "unknown policy 'soup_half'" in bad.json()["error"]["message"]
        scored = http.post("/admin/score", json={"items": [{"prompt": "Life is", "response": "good"}]}).json()
        assert list(scored["data"][0]["implicit_rewards"]) == ["alpha", "gamma"]
        assert list(scored["data"][0]["logprobs"]) == ["ref", "alpha", "gamma", "soup_alpha", "soup_gamma", "soup_half"]


def test_a_pair_eval_judges_soups_as_it_judges_any_model(soup_server):
    """A soup is a pair eval's candidate like a policy: a one-hot soup's margins are its policy's,
    and no soup has a sequence-level mixture margin (it is not a mixture of the policies)."""
    pairs = [
        {"prompt": prompt, "chosen": chosen, "rejected": rejected, "objective": "alpha"}  # the manifest's objective
        for prompt in PROMPTS
        for chosen, rejected in ((" good.", " a bad one."), (" yes", " no"))
    ]
    options = {"candidates": ["alpha", "gamma", "soup_alpha", "soup_gamma", "soup_half"], "against": "soup_half"}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=soup_server.url, headers=headers, timeout=120) as http:
        started = http.post("/admin/eval", json={"items": pairs, "options": options})
        assert started.status_code == 202, started.text
        status = wait_for_job(http, "eval", started.json()["id"])
        assert status["phase"] == "succeeded", status
        rows = [json.loads(line) for line in http.get(f"/admin/eval/{status['id']}/answers.jsonl").text.splitlines()]
    assert len(rows) == len(pairs)
    for row in rows:
        assert row["margins"]["soup_alpha"] == pytest.approx(row["margins"]["alpha"], abs=1e-3)
        assert row["margins"]["soup_gamma"] == pytest.approx(row["margins"]["gamma"], abs=1e-3)
        assert set(row["linear_margins"]) == {"alpha", "gamma"}
    assert any(abs(row["margins"]["soup_half"]) > 1e-3 for row in rows)
    by_name = {c["name"]: c for c in status["result"]["candidates"]}
    assert by_name["soup_half"]["objectives"]["alpha"]["accuracy_minus_against"]["mean"] == 0.0
