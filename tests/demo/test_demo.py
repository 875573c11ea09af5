"""The embedded demo: built by the project (cached), each policy beats the reference on its
own objective, and `mpo-serve serve` without a manifest serves it to the openai client."""

import json

import openai
import pytest

from demo.build import STAMP
from demo.rewards import OBJECTIVES
from server.cli import demo_manifest
from server.settings import Settings
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def demo(settings):
    return demo_manifest(settings)  # builds on a fresh machine (minutes), then cached


def test_each_policy_beats_the_reference_on_its_own_objective(demo):
    scores = json.loads((demo.parent / STAMP).read_text())["scores"]
    for objective in OBJECTIVES:
        assert scores[objective][objective] > scores["ref"][objective], scores


def test_demo_ships_held_out_prompts(demo):
    prompts = [json.loads(line)["prompt"] for line in (demo.parent / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) >= 64 and all(prompts)


def test_serve_without_manifest_serves_the_demo(demo, settings, tmp_path):
    process = ServerProcess(None, settings.data_dir, tmp_path / "demo-server.log")
    try:
        process.wait_ready()
        client = openai.OpenAI(base_url=f"{process.url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["mpo-demo", "ref", "positive", "concise"]
        chat = client.chat.completions.create(
            model="mpo-demo", messages=[{"role": "user", "content": "Life is"}], max_tokens=20
        )
        assert chat.choices[0].message.content.strip()
        stream = client.chat.completions.create(
            model="mpo-demo",
            messages=[{"role": "user", "content": "My friend"}],
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mixture": {"weights": {"positive": 0.9, "concise": 0.1}}},
        )
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].usage is not None
        completion = client.completions.create(model="concise", prompt="The best way to", max_tokens=20)
        assert completion.choices[0].finish_reason in ("stop", "length")
    finally:
        process.stop()
