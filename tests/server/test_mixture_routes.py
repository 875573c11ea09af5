"""The routes the playground reads besides the OpenAI ones: /v1/mixture and /v1/mixture/score
(the manifest's objectives), /admin/jobs, /admin/prompts and a fit's trajectory; and the CLI's
fit and eval taking the manifest's objectives as their default scorers."""

import json
import subprocess
import sys

import pytest

from scorers import get_scorer
from tests.jobs import wait_for_job
from tests.server_process import ADMIN_TOKEN


def test_the_mixture_says_its_policies_weights_sets_and_objectives(http, admin):
    mixture = http.get("/v1/mixture").json()
    assert mixture["id"] == "test-mix" and mixture["reference"] == "ref"
    assert mixture["policies"] == ["alpha", "beta"]
    assert mixture["default_weights"] == {"alpha": 0.5, "beta": 0.5}
    sets = {s["id"]: s for s in mixture["weight_sets"]}
    assert sets[mixture["active_weight_set"]]["weights"] == {"alpha": 0.5, "beta": 0.5}
    assert sets[1]["source"] == "manifest"
    assert mixture["objectives"] == {
        "alpha": {"scorer": "sentiment", "direction": "higher", "units": "VADER compound in [-1, 1]", "length": False},
        "beta": {"scorer": "concise", "direction": "higher", "units": "minus words", "length": True},
    }
    assert "/" not in json.dumps(mixture)  # no paths: those are the admin API's
    described = admin.get("/admin/mixture").json()
    assert described["objectives"] == {"alpha": "sentiment", "beta": "concise"}
    assert described["prompt_sets"] == ["fit"]


def test_answers_are_scored_by_the_objectives_scorers(http):
    answers = ["What a wonderful, lovely day!", "This is awful and I hate it.", "ok"]
    for prompt in ("Tell me", [{"role": "user", "content": "Tell me"}]):
        scored = http.post("/v1/mixture/score", json={"prompt": prompt, "responses": answers}).json()
        expected_alpha = get_scorer("sentiment")(["Tell me"] * 3, answers)
        expected_beta = get_scorer("concise")(["Tell me"] * 3, answers)
        assert scored["data"] == [{"alpha": a, "beta": b} for a, b in zip(expected_alpha, expected_beta, strict=True)]


@pytest.mark.parametrize(
    "body,param",
    [
        ({"prompt": "x", "responses": []}, "responses"),
        ({"prompt": "x", "responses": ["a"] * 65}, "responses"),
        ({"prompt": "x"}, "responses"),
        ({"prompt": [{"role": "user"}], "responses": ["a"]}, "prompt"),
        ({"prompt": "x", "responses": ["a"], "extra": 1}, "extra"),
    ],
)
def test_bad_score_requests_are_400_naming_the_field(http, body, param):
    response = http.post("/v1/mixture/score", json=body)
    assert response.status_code == 400
    assert param in response.json()["error"]["param"]


def test_prompt_sets_and_jobs_are_listed_for_the_admin(admin, http, test_manifest):
    sets = admin.get("/admin/prompts").json()["data"]
    assert sets == [{"name": "fit", "prompts": 16}]
    text = admin.get("/admin/prompts/fit").text
    assert text == (test_manifest.parent / "prompts.jsonl").read_text()
    missing = admin.get("/admin/prompts/eval")
    assert missing.status_code == 404 and "'fit'" in missing.json()["error"]["message"]
    items = [json.loads(line) for line in text.splitlines()[:4]]
    options = {"samples_per_prompt": 2, "max_tokens": 6, "iterations": 30, "batch_size": 2}
    started = admin.post("/admin/fit", json={"items": items, "options": options}).json()
    status = wait_for_job(admin, "fit", started["id"])
    listed = admin.get("/admin/jobs", params={"limit": 5}).json()["data"]
    assert listed[0]["id"] == started["id"] and listed[0]["kind"] == "fit" and listed[0]["status"] == "succeeded"
    trajectory = admin.get(f"/admin/fit/{started['id']}/trajectory").json()
    assert trajectory["policies"] == ["alpha", "beta"]
    assert [p["t"] for p in trajectory["points"]] == list(range(1, 31))
    assert all(sum(p["weights"]) == pytest.approx(1) for p in trajectory["points"])
    average = [sum(p["weights"][k] for p in trajectory["points"]) / 30 for k in (0, 1)]
    assert status["weights"] == pytest.approx({"alpha": average[0], "beta": average[1]})  # the method's output
    for path in ("/admin/jobs", "/admin/prompts", "/admin/prompts/fit", f"/admin/fit/{started['id']}/trajectory"):
        assert http.get(path).status_code == 401
    assert admin.get("/admin/jobs", params={"limit": 0}).status_code == 400


def cli(server, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "server.cli", *args, "--server", server.url, "--token", ADMIN_TOKEN]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_the_cli_fit_and_eval_default_to_the_manifest_objectives(server, admin, test_manifest, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join((test_manifest.parent / "prompts.jsonl").read_text().splitlines(True)[:3]))
    done = cli(
        server,
        "eval",
        str(prompts),
        "--candidates",
        "alpha",
        "--max-tokens",
        "6",
        "--answers",
        str(tmp_path / "a.jsonl"),
        "--plot",
        str(tmp_path / "e.png"),
    )
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert "win alpha" in header and "win beta" in header
    fit = cli(
        server,
        "fit",
        str(prompts),
        "--scorers",
        "--beta",
        "0.1",
        "--samples-per-prompt",
        "2",
        "--max-tokens",
        "6",
        "--iterations",
        "20",
        "--plot",
        str(tmp_path / "f.png"),
    )
    assert fit.returncode == 0, fit.stderr
    result = json.loads(fit.stdout)
    assert result["phase"] == "succeeded"
    assert admin.get(f"/admin/fit/{result['id']}").json()["params"]["scorers"] == {
        "alpha": "sentiment",
        "beta": "concise",
    }
