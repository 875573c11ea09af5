"""Eval jobs through the admin API on the tests' mixture: the result's numbers come from the
answers it serves for download, candidates pair with the reference answer for answer, runs are
reproducible, a stored weight set keeps its Min, a reward model given by path works, and bad
input is a 4xx that names it."""

import io
import json

import httpx
import pytest

from evaluation.summary import summarise_candidates
from scorers import get_scorer
from tests.jobs import wait_for_job
from tests.scorers.reward_models import build_reward_model
from tests.server_process import ADMIN_TOKEN

PROMPTS = ["Life is", "The best way to", "Never trust a computer", "My friend said"]


def wait_for(admin, job_id: str, timeout: float = 600) -> dict:
    return wait_for_job(admin, "eval", job_id, timeout)


def run_eval(admin, options: dict, prompts=PROMPTS) -> dict:
    response = admin.post("/admin/eval", json={"items": [{"prompt": p} for p in prompts], "options": options})
    assert response.status_code == 202, response.text
    status = wait_for(admin, response.json()["id"])
    assert status["phase"] == "succeeded", status
    return status


def answers(admin, job_id: str) -> list[dict]:
    response = admin.get(f"/admin/eval/{job_id}/answers.jsonl")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.fixture(scope="module")
def reward_model(test_manifest, tmp_path_factory):
    return build_reward_model(test_manifest.parent / "ref", tmp_path_factory.mktemp("rm") / "rm")


@pytest.fixture(scope="module")
def evaluated(admin_module, reward_model):
    """One eval of a component, the same by one-hot weights, the mixture and a stored set."""
    stored = admin_module.put("/admin/weights", json={"weights": {"alpha": 0.3, "beta": 0.7}}).json()
    set_id = stored["active_weight_set"]
    admin_module.put("/admin/weights", json={"weights": {"alpha": 0.5, "beta": 0.5}})
    options = {
        "candidates": [
            "alpha",
            {"name": "alpha-by-weights", "weights": {"alpha": 1}},
            "test-mix",
            f"test-mix@{set_id}",
        ],
        "objectives": {"happy": "sentiment", "short": "concise", "rm": f"reward_model:{reward_model}"},
        "samples_per_prompt": 2,
        "max_tokens": 12,
        "seed": 3,
        "against": "test-mix",
    }
    return options, set_id, run_eval(admin_module, options)


@pytest.fixture(scope="module")
def admin_module(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120) as client:
        yield client


def test_result_is_recomputed_from_the_downloaded_answers(admin, evaluated, reward_model):
    options, _, status = evaluated
    result = status["result"]
    names = [c["name"] for c in result["candidates"]]
    assert names == ["ref", "alpha", "alpha-by-weights", "test-mix", names[4]]  # the reference is added first
    assert result["reference"] == "ref" and result["prompts"] == 4 and result["samples_per_prompt"] == 2
    assert result["objectives"]["rm"] == {
        "scorer": f"reward_model:{reward_model}",
        "direction": "higher",
        "units": "reward model logit",
        "length": False,
    }
    lines = answers(admin, status["id"])
    assert len(lines) == 5 * 4 * 2
    # every reward in the file is the scorer's reward of that answer (a reward model batched differently
    # here, in another process, agrees to float noise)
    for objective, spec in options["objectives"].items():
        scorer = get_scorer(spec)
        assert [line["rewards"][objective] for line in lines] == pytest.approx(
            scorer([line["prompt"] for line in lines], [line["response"] for line in lines]), abs=1e-4
        )
    rewards = {
        name: {
            o: [
                [line["rewards"][o] for line in lines if line["candidate"] == name and line["prompt_index"] == p]
                for p in range(4)
            ]
            for o in options["objectives"]
        }
        for name in names
    }
    cut = {
        name: [
            [
                line["finish_reason"] == "length"
                for line in lines
                if line["candidate"] == name and line["prompt_index"] == p
            ]
            for p in range(4)
        ]
        for name in names
    }
    directions = {"happy": "higher", "short": "higher", "rm": "higher"}
    # concise is a length judge: its cut answers tie among themselves (evaluation.stats.censor_cut)
    expected = summarise_candidates(rewards, "ref", directions, "test-mix", cut, {"short"})
    assert expected != summarise_candidates(rewards, "ref", directions, against="test-mix")  # the rule mattered
    assert result["against"] == "test-mix"
    for candidate in result["candidates"]:
        assert candidate["objectives"] == expected[candidate["name"]]["objectives"]  # JSON floats round-trip exactly
        assert candidate["min"] == expected[candidate["name"]]["min"]
        assert candidate["min_minus_against"] == expected[candidate["name"]]["min_minus_against"]
        assert candidate["tokens_per_s"] > 0 and 1 <= candidate["mean_tokens"] <= 12
    assert result["candidates"][0]["min"]["win_rate"] == 0.5  # the reference against itself: all ties


def test_a_policy_by_model_id_and_by_one_hot_weights_answers_identically(admin, evaluated):
    _, _, status = evaluated
    lines = answers(admin, status["id"])

    def responses(candidate):
        return [(a["prompt_index"], a["sample"], a["response"]) for a in lines if a["candidate"] == candidate]

    by_id, by_weights = responses("alpha"), responses("alpha-by-weights")
    assert by_id == by_weights
    by_name = {c["name"]: c for c in status["result"]["candidates"]}
    assert by_name["alpha"]["objectives"] == by_name["alpha-by-weights"]["objectives"]
    assert len({response for _, _, response in by_id}) > 1  # seeds differ per prompt and sample


def test_the_same_eval_twice_gives_identical_numbers(admin, evaluated):
    options, _, first = evaluated
    second = run_eval(admin, options)
    # timings vary; the mixture's active weight set got a new id (same weights) when a test reset them
    timing = ("seconds", "tokens_per_s", "weight_set")
    strip = lambda result: [{k: v for k, v in c.items() if k not in timing} for c in result["candidates"]]  # noqa: E731
    assert strip(second["result"]) == strip(first["result"])


def test_a_stored_weight_set_keeps_its_latest_min_and_the_plot_is_a_png(admin, evaluated):
    _, set_id, status = evaluated
    history = {h["id"]: h for h in admin.get("/admin/weights/history").json()["data"]}
    evaluated_set = next(c for c in status["result"]["candidates"] if c["weight_set"] == set_id)
    latest = history[set_id]["latest_eval"]
    assert (
        latest["min_win_rate"] == evaluated_set["min"]["win_rate"]
        and latest["min_objective"] == evaluated_set["min"]["objective"]
    )
    png = admin.get(f"/admin/eval/{status['id']}/plot.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_jsonl_upload_chats_and_cancel(admin):
    lines = "\n".join(json.dumps({"messages": [{"role": "user", "content": p}]}) for p in PROMPTS * 16)
    options = {
        "candidates": ["alpha", "beta"],
        "objectives": {"short": "concise"},
        "samples_per_prompt": 8,
        "max_tokens": 200,
    }
    response = admin.post(
        "/admin/eval",
        files={"file": ("prompts.jsonl", io.BytesIO(lines.encode()))},
        data={"options": json.dumps(options)},
    )
    assert response.status_code == 202, response.text
    job = response.json()["id"]
    conflict = admin.post(
        "/admin/eval", files={"file": ("p.jsonl", io.BytesIO(lines.encode()))}, data={"options": json.dumps(options)}
    )
    assert conflict.status_code == 409 and job in conflict.json()["error"]["message"]
    assert admin.delete(f"/admin/eval/{job}").status_code == 200
    assert wait_for(admin, job, 60)["phase"] == "cancelled"
    assert admin.get(f"/admin/eval/{job}/answers.jsonl").status_code == 409
    assert admin.delete(f"/admin/eval/{job}").status_code == 409


@pytest.mark.parametrize(
    "options,status,fragment",
    [
        (
            {"candidates": ["alpha"], "objectives": {"x": "sentimental"}},
            400,
            "options.objectives.x: unknown scorer 'sentimental'",
        ),
        ({"candidates": ["alpha"], "objectives": {"x": "reward_model:/no/rm"}}, 400, "'/no/rm' does not exist"),
        (
            {"candidates": ["gamma"], "objectives": {"x": "concise"}},
            404,
            "options.candidates.0: the model 'gamma' does not exist",
        ),
        ({"candidates": [{"weights": {"zeta": 1}}], "objectives": {"x": "concise"}}, 400, "unknown policy 'zeta'"),
        ({"candidates": ["alpha", "alpha"], "objectives": {"x": "concise"}}, 400, "repeated: ['alpha']"),
        ({"candidates": ["alpha"], "objectives": {"x": "concise"}, "reference": "nope"}, 404, "options.reference"),
        (
            {"candidates": ["alpha"], "objectives": {"x": "concise"}, "against": "beta"},
            400,
            "options.against: 'beta' is not one of the candidates ['ref', 'alpha']",
        ),
        ({"candidates": [], "objectives": {"x": "concise"}}, 400, "candidates"),
        ({"candidates": ["alpha"], "objectives": {}}, 400, "objectives"),
        (
            {"candidates": ["alpha"], "objectives": {"x": "concise"}, "max_tokens": 100000},
            400,
            "maximum context length",
        ),
    ],
)
def test_bad_eval_requests_name_the_problem(admin, options, status, fragment):
    response = admin.post("/admin/eval", json={"items": [{"prompt": "Life is"}], "options": options})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"]


def test_unknown_eval_job_is_404(admin, http):
    assert admin.get("/admin/eval/nope").status_code == 404
    assert admin.get("/admin/eval/nope/plot.png").status_code == 404
    assert http.post("/admin/eval", json={}).status_code == 401
