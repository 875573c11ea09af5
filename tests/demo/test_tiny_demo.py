"""The tiny demo: built by the project (cached), each policy beats the reference on its own
objective, `mpo-serve serve --demo tiny` serves it to the openai client, and `mpo-serve fit`
fits its weights from 64 held-out prompts."""

import json
import subprocess
import sys

import httpx
import numpy as np
import openai
import pytest

from demo.rewards import TWO_OBJECTIVES as OBJECTIVES
from demo.tiny.build import STAMP
from server.cli.main import demo_manifest
from server.settings import Settings
from tests.server_process import ADMIN_TOKEN, ServerProcess


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(demo="tiny")


@pytest.fixture(scope="module")
def demo(settings):
    return demo_manifest(settings)  # builds on a fresh machine (minutes), then cached


@pytest.fixture(scope="module")
def demo_server(demo, settings, tmp_path_factory):
    # The demo's models from the shared cache; the weight store in a fresh folder.
    logs = tmp_path_factory.mktemp("demo-server")
    process = ServerProcess(
        None, settings.data_dir, logs / "server.log", store=logs / "weights.sqlite", env={"MPO_DEMO": "tiny"}
    )
    with process:
        yield process


def test_each_policy_beats_the_reference_on_its_own_objective(demo):
    scores = json.loads((demo.parent / STAMP).read_text())["scores"]
    for objective in OBJECTIVES:
        assert scores[objective][objective] > scores["ref"][objective], scores


def test_demo_ships_held_out_prompts(demo):
    prompts = [json.loads(line)["prompt"] for line in (demo.parent / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) >= 64 and all(prompts)


def test_serve_without_manifest_serves_the_chosen_demo(demo_server):
    client = openai.OpenAI(base_url=f"{demo_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()][:4] == ["mpo-tiny", "ref", "positive", "concise"]
    chat = client.chat.completions.create(
        model="mpo-tiny", messages=[{"role": "user", "content": "Life is"}], max_tokens=20
    )
    assert chat.choices[0].message.content.strip()
    stream = client.chat.completions.create(
        model="mpo-tiny",
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


def test_fit_cli_on_64_prompts_moves_weight_to_the_worst_served_objective(demo, demo_server, tmp_path):
    lines = (demo.parent / "prompts.jsonl").read_text().splitlines()[:64]
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    plot = tmp_path / "fit.png"
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "fit",
        str(batch),
        "--server",
        demo_server.url,
        "--token",
        ADMIN_TOKEN,
        "--samples-per-prompt",
        "8",
        "--max-tokens",
        "40",
        "--iterations",
        "500",
        "--step",
        "2",
        "--batch-size",
        "16",
        "--activate",
        "--plot",
        str(plot),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["phase"] == "succeeded" and plot.read_bytes().startswith(b"\x89PNG")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=demo_server.url, headers=headers, timeout=300) as admin:
        mixture = admin.get("/admin/mixture").json()
        assert mixture["active_weight_set"] == result["result_weight_set"]
        assert mixture["default_weights"] == pytest.approx(result["weights"])
    # On the fit's own samples: E_{pi_lambda}[s_k] at the uniform start and at the fitted weights.
    names = list(result["weights"])
    at_start = np.array([result["start"]["expected_scores"][k] for k in names])
    at_fit = np.array([result["expected_scores"][k] for k in names])
    print(
        f"E_uniform[s] {result['start']['expected_scores']}; E_fitted[s] {result['expected_scores']}; "
        f"weights {result['weights']}; F {result['start']['objective']:.4f} -> {result['objective']:.4f}"
    )
    # Mirror descent moves weight toward the objective the current (at first: uniform)
    # mixture serves worst, lowers F, and serves the objectives more evenly (MaxMin).
    worst = names[int(np.argmin(at_start))]
    assert result["weights"][worst] > 0.5, result
    assert result["objective"] < result["start"]["objective"], result
    assert np.ptp(at_fit) < np.ptp(at_start), result
