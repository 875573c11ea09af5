"""MPO fit jobs through the admin API, against exact answers."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from transformers import AutoTokenizer

from demo.tiny.pretrain import read_corpus
from tests.jobs import wait_for_job
from weights.solver import fit_scores, normalised_rewards


def wait_for(admin, job_id: str, timeout: float = 600) -> dict:
    return wait_for_job(admin, "fit", job_id, timeout)


def run_fit(admin, body: dict) -> dict:
    response = admin.post("/admin/fit", json=body)
    assert response.status_code == 202, response.text
    status = wait_for(admin, response.json()["id"])
    assert status["phase"] == "succeeded", status
    return status


@pytest.fixture(scope="module")
def tokenizer(test_manifest):
    return AutoTokenizer.from_pretrained(test_manifest.parent / "ref")


def test_single_token_fit_matches_the_exact_minimiser(admin, oracle, tokenizer):
    """With max_tokens=1, F is computable exactly from full next-token distributions."""
    prompts = [tokenizer(" ".join(t.split()[:3]))["input_ids"] for t in read_corpus()[:64]]
    with torch.no_grad():
        logprobs = [[oracle.next_logprobs(p, w).double().numpy() for w in np.eye(3)] for p in prompts]
    ref = np.array([lp[0] for lp in logprobs])  # (N, V)
    rewards = np.array([np.stack([lp[1] - lp[0], lp[2] - lp[0]], axis=-1) for lp in logprobs])  # (N, V, 2)

    def exact_f(w):
        z = rewards @ w
        top = z.max(axis=1, keepdims=True)
        return float(np.mean(np.log((np.exp(ref) * np.exp(z - top)).sum(axis=1)) + top[:, 0]))

    exact = minimize(
        exact_f,
        [0.5, 0.5],
        bounds=[(0, 1)] * 2,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-15},
    ).x
    options = {"samples_per_prompt": 1024, "max_tokens": 1, "iterations": 3000, "step": 20.0, "batch_size": 64}
    status = run_fit(admin, {"items": [{"prompt": p} for p in prompts], "options": options})
    fitted = np.array([status["weights"]["alpha"], status["weights"]["beta"]])
    assert np.abs(fitted - exact).sum() < 0.03, (fitted, exact)
    assert status["progress"]["samples_done"] == 64 * 1024


def test_fit_on_supplied_responses_equals_the_solver_on_the_loops_scores(admin, oracle, tokenizer):
    prompts = ["Life is", "The best way to", "Never trust", "My friend"]
    responses = [[30 + i, 40 + j, 3] for i in range(3) for j in range(2)]  # 6 per prompt
    options = {"iterations": 400, "step": 3.0, "batch_size": 2, "seed": 5}
    items = [{"prompt": p, "responses": responses} for p in prompts]
    status = run_fit(admin, {"items": items, "options": options})
    scores = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        rows = [oracle.sequence_logprobs(ids, r) for r in responses]
        scores.append([[row[1] - row[0], row[2] - row[0]] for row in rows])
    expected = fit_scores(np.array(scores), 400, 3.0, 2, seed=5)
    assert np.abs(np.array(list(status["weights"].values())) - expected.weights).sum() < 1e-3


def test_standardised_fit_equals_the_solver_on_scores_standardised_here(admin, oracle, tokenizer):
    """normalise: standard (the paper's ablation): each objective's implicit rewards shifted and
    scaled to mean 0, deviation 1 over every prompt and response, then the same solver."""
    prompts = ["Life is", "The best way to", "Never trust"]
    responses = [[30 + i, 40 + j, 3] for i in range(3) for j in range(2)]
    options = {"iterations": 300, "step": 3.0, "batch_size": 2, "seed": 4, "normalise": "standard"}
    status = run_fit(admin, {"items": [{"prompt": p, "responses": responses} for p in prompts], "options": options})
    raw = []
    for prompt in prompts:
        rows = [oracle.sequence_logprobs(tokenizer(prompt)["input_ids"], r) for r in responses]
        raw.append([[row[1] - row[0], row[2] - row[0]] for row in rows])
    flat = np.array(raw).reshape(-1, 2)  # every (prompt, response) of an objective together
    standard = ((flat - flat.mean(axis=0)) / flat.std(axis=0)).reshape(len(prompts), len(responses), 2)
    assert not np.allclose(standard, raw)
    expected = fit_scores(standard, 300, 3.0, 2, seed=4)
    unscaled = fit_scores(np.array(raw), 300, 3.0, 2, seed=4)
    assert np.abs(np.array(list(status["weights"].values())) - expected.weights).sum() < 1e-3
    assert np.abs(np.array(expected.weights) - unscaled.weights).sum() > 1e-2  # the test can tell them apart
    assert status["params"]["normalise"] == "standard"


def test_chat_prompts_are_rendered_with_the_chat_template(admin, oracle, tokenizer):
    chats = [[{"role": "user", "content": p}] for p in ("Life is", "Never trust")]
    responses = [[30 + i, 3] for i in range(4)]
    options = {"iterations": 200, "step": 3.0, "batch_size": 2, "seed": 2}
    status = run_fit(admin, {"items": [{"messages": c, "responses": responses} for c in chats], "options": options})
    scores = []
    for chat in chats:
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        rows = [oracle.sequence_logprobs(ids, r) for r in responses]
        scores.append([[row[1] - row[0], row[2] - row[0]] for row in rows])
    expected = fit_scores(np.array(scores), 200, 3.0, 2, seed=2)
    assert np.abs(np.array(list(status["weights"].values())) - expected.weights).sum() < 1e-3


def test_fit_with_reward_scores_is_the_explicit_reward_variant(admin):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(5, 4, 2))
    items = [
        {
            "prompt": f"p{n}",
            "responses": [f"r{j}" for j in range(4)],
            "rewards": [{"alpha": float(r[0]), "beta": float(r[1])} for r in rewards[n]],
        }
        for n in range(5)
    ]
    options = {"iterations": 300, "step": 2.0, "batch_size": 3, "seed": 1, "beta": 0.5}
    status = run_fit(admin, {"items": items, "options": options})
    expected = fit_scores(normalised_rewards(rewards, 0.5), 300, 2.0, 3, seed=1)
    np.testing.assert_allclose(list(status["weights"].values()), expected.weights, atol=1e-9)


def test_fit_on_scorer_rewards_of_reference_samples_is_the_explicit_variant(admin):
    """options.scorers: the server samples from the reference and rewards the samples with the
    named scorers; the same samples (same seeds, through /admin/sample) scored here give the
    same fit."""
    prompts = ["Life is", "The best way to", "Never trust"]
    options = {"samples_per_prompt": 4, "max_tokens": 8, "iterations": 200, "step": 2.0, "batch_size": 2, "seed": 5}
    scorers = {"alpha": "concise", "beta": f"python:{Path(__file__).parent / 'objectives.py'}:letters"}
    status = run_fit(
        admin, {"items": [{"prompt": p} for p in prompts], "options": options | {"scorers": scorers, "beta": 2.0}}
    )
    samples = admin.post("/admin/sample", json={"prompts": prompts, "n": 4, "max_tokens": 8, "seed": 5}).json()["data"]
    rewards = np.array(
        [
            [[-len(s["text"].split()), sum(c.isalpha() for c in s["text"])] for s in group["samples"]]
            for group in samples
        ],
        dtype=np.float64,
    )
    expected = fit_scores(normalised_rewards(rewards, 2.0), 200, 2.0, 2, seed=5)
    np.testing.assert_allclose(list(status["weights"].values()), expected.weights, atol=1e-9)
    assert status["params"]["scorers"] == scorers


def test_jsonl_upload_store_activate_plot_and_history(admin, server):
    lines = "\n".join(json.dumps({"prompt": p}) for p in ["Life is", "The best", "Never", "My friend"])
    options = {"samples_per_prompt": 4, "max_tokens": 6, "iterations": 50, "batch_size": 2, "activate": True}
    response = admin.post(
        "/admin/fit", files={"file": ("batch.jsonl", io.BytesIO(lines.encode()))}, data={"options": json.dumps(options)}
    )
    assert response.status_code == 202, response.text
    status = wait_for(admin, response.json()["id"])
    assert status["phase"] == "succeeded" and status["progress"]["samples_done"] == 16
    assert status["current"]["weights"].keys() == {"alpha", "beta"} and status["current"]["objective"] is not None
    set_id = status["result_weight_set"]
    mixture = admin.get("/admin/mixture").json()
    assert mixture["active_weight_set"] == set_id
    assert mixture["default_weights"] == pytest.approx(status["weights"])
    history = admin.get("/admin/weights/history").json()["data"]
    newest = history[0]
    assert newest["id"] == set_id and newest["source"] == "fit" and newest["active"]
    assert newest["job_id"] == status["id"] and newest["params"]["iterations"] == 50 and len(newest["data_hash"]) == 64
    png = admin.get(f"/admin/fit/{status['id']}/plot.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_rollback_and_serving_a_stored_weight_set(admin, http, tokenizer):
    first = admin.put("/admin/weights", json={"weights": {"alpha": 0.9, "beta": 0.1}}).json()["active_weight_set"]
    admin.put("/admin/weights", json={"weights": {"alpha": 0.2, "beta": 0.8}})
    body = {"prompt": "Life is", "max_tokens": 8, "temperature": 0, "logprobs": 0}
    stored = http.post("/v1/completions", json={**body, "model": f"test-mix@{first}"}).json()
    explicit = http.post(
        "/v1/completions", json={**body, "model": "test-mix", "mixture": {"weights": {"alpha": 0.9, "beta": 0.1}}}
    ).json()
    assert stored["model"] == f"test-mix@{first}"
    assert stored["choices"][0]["logprobs"] == explicit["choices"][0]["logprobs"]
    rolled = admin.post(f"/admin/weights/{first}/activate").json()
    assert rolled["active_weight_set"] == first and rolled["default_weights"] == {"alpha": 0.9, "beta": 0.1}
    assert admin.post("/admin/weights/99999/activate").status_code == 404
    assert http.post("/v1/completions", json={**body, "model": "test-mix@99999"}).status_code == 404


def test_second_fit_conflicts_and_a_fit_can_be_cancelled(admin):
    long = {"items": [{"prompt": "Life is"}] * 64, "options": {"samples_per_prompt": 64, "max_tokens": 100}}
    started = admin.post("/admin/fit", json=long).json()
    conflict = admin.post("/admin/fit", json=long)
    assert conflict.status_code == 409 and started["id"] in conflict.json()["error"]["message"]
    admin.delete(f"/admin/fit/{started['id']}")
    assert wait_for(admin, started["id"], 60)["phase"] == "cancelled"
    assert admin.delete(f"/admin/fit/{started['id']}").status_code == 409
    history = admin.get("/admin/weights/history").json()["data"]
    assert all(h["job_id"] != started["id"] for h in history)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"items": []}, "items"),
        ({"items": [{"prompt": "a"}, {"prompt": "b", "responses": ["x"]}]}, "same form"),
        ({"items": [{"prompt": "a", "responses": ["x"]}, {"prompt": "b", "responses": ["x", "y"]}]}, "same number"),
        ({"items": [{"prompt": "a", "responses": ["x"], "rewards": [{"alpha": 1, "beta": 0}]}]}, "beta"),
        (
            {"items": [{"prompt": "a", "responses": ["x"], "rewards": [{"gamma": 1}]}], "options": {"beta": 1}},
            "exactly the policies",
        ),
        ({"items": [{"prompt": "a"}], "options": {"iterations": 0}}, "iterations"),
        ({"items": [{"prompt": "a", "messages": [{"role": "user", "content": "a"}]}]}, "exactly one of"),
        ({"items": [{"responses": ["x"]}]}, "exactly one of"),
        ({"items": [{"prompt": "a"}], "options": {"surprise": 1}}, "surprise"),
        (
            {"items": [{"prompt": "a"}], "options": {"scorers": {"alpha": "concise", "beta": "concise"}}},
            "beta is required",
        ),
        (
            {"items": [{"prompt": "a"}], "options": {"scorers": {"alpha": "concise"}, "beta": 1}},
            "must name exactly the policies",
        ),
        (
            {"items": [{"prompt": "a"}], "options": {"scorers": {"alpha": "concise", "beta": "nope"}, "beta": 1}},
            "options.scorers.beta: unknown scorer 'nope'",
        ),
        (
            {
                "items": [{"prompt": "a"}],
                "options": {"scorers": {"alpha": "concise", "beta": "concise"}, "beta": 1, "normalise": "standard"},
            },
            "options.normalise 'standard' standardises implicit rewards",
        ),
        ({"items": [{"prompt": "a"}], "options": {"normalise": "minmax"}}, "normalise"),
    ],
)
def test_bad_fit_requests_are_400(admin, body, fragment):
    response = admin.post("/admin/fit", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_unknown_fit_job_is_404_and_admin_needs_a_token(admin, http):
    assert admin.get("/admin/fit/nope").status_code == 404
    assert http.post("/admin/fit", json={"items": [{"prompt": "a"}]}).status_code == 401
