"""The SmolLM2 demo's whole build path at smoke scale (a few prompts, two DPO steps): real
SmolLM2-135M-Instruct, real LoRA adapters, deterministic, and served by `mpo-serve` on one
shared base (nothing merged), equal to peft with the adapters unmerged. The full build's
margins are checked by the build itself."""

import json

import httpx
import openai
import pytest
import yaml
from transformers import AutoTokenizer

from demo.smollm2.build import STAMP, build, is_built, smoke_config
from tests.completions import completion_body, token_ids
from tests.oracle import MixtureOracle
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def smoke_demo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("smollm2") / "demo", smoke_config())


def test_build_writes_reference_adapters_manifest_prompts_and_report(smoke_demo):
    folder = smoke_demo.parent
    manifest = yaml.safe_load(smoke_demo.read_text())
    assert manifest["reference"] == {"name": "ref", "path": "ref"}
    assert manifest["policies"] == [
        {"name": "positive", "adapter": "adapters/positive"},
        {"name": "concise", "adapter": "adapters/concise"},
    ]
    for name in ("positive", "concise"):
        config = json.loads((folder / "adapters" / name / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(folder / "ref")
    stamp = json.loads((folder / STAMP).read_text())
    assert set(stamp["report"]) == {"ref", "positive", "concise"}
    for row in stamp["report"].values():
        assert set(row["scores"]) == {"positive", "concise"} and row["scores"]["positive"]["n"] == 4
    for split in ("fit", "eval"):
        first = json.loads((folder / f"{split}_prompts.jsonl").read_text().splitlines()[0])
        assert first["messages"][0]["role"] == "user" and first["messages"][0]["content"]
    answers = [json.loads(line) for line in (folder / "eval_answers.jsonl").read_text().splitlines()]
    assert len(answers) == 3 * 4 and {a["model"] for a in answers} == {"ref", "positive", "concise"}


def test_build_is_cached_and_deterministic(smoke_demo, tmp_path):
    assert is_built(smoke_demo.parent, smoke_config())
    first = json.loads((smoke_demo.parent / STAMP).read_text())
    again = json.loads((build(tmp_path / "again", smoke_config()).parent / STAMP).read_text())
    assert again["report"] == first["report"] and again["dpo_losses"] == first["dpo_losses"]


def test_smoke_demo_serves_its_adapters_through_the_openai_client(smoke_demo, tmp_path):
    """On the shared base: its adapters change only the top layers (the shared base runs the
    others once), and the default mixture's greedy tokens equal the loop's."""
    with ServerProcess(smoke_demo, tmp_path, tmp_path / "server.log") as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()][:4] == ["mpo-demo", "ref", "positive", "concise"]
        for model in ("mpo-demo", "positive", "concise"):
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Tell me about tea."}], max_tokens=8, seed=1
            )
            assert reply.choices[0].message.content.strip()
        prompt = AutoTokenizer.from_pretrained(smoke_demo.parent / "ref")("Tell me about tea.")["input_ids"]
        body = completion_body(prompt, model="mpo-demo", max_tokens=6)
        logprobs = httpx.post(f"{server.url}/v1/completions", json=body, timeout=120).json()["choices"][0]["logprobs"]
        assert "served on one shared base" in server.log.read_text()
    oracle = MixtureOracle(smoke_demo)
    oracle.check_greedy(
        prompt, oracle.vector({"positive": 0.5, "concise": 0.5}), token_ids(logprobs), logprobs["token_logprobs"]
    )
    assert not (tmp_path / "merged").exists()  # nothing merged at start
