"""Preference pairs through the admin API: the pair eval's margins against the oracle (peft's
unmerged adapters on the LoRA server), the pair fit against the exact maximiser of its concave
objective, and bad pair lines refused before anything is stored."""

import io
import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.jobs import wait_for_job
from tests.maxmin import exact_pair_maxmin
from weights.pairs import PairObjective, margins

pytestmark = pytest.mark.both_modes

PROMPTS = ["Life is", "The best way to", "Never trust", "My friend"]


@pytest.fixture(scope="module")
def tokenizer(test_manifest):
    return AutoTokenizer.from_pretrained(test_manifest.parent / "ref")


def pairs() -> list[dict]:
    """Token-id answers of one or two tokens, and one text pair (end-of-text appended), for both objectives."""
    items = []
    for n, prompt in enumerate(PROMPTS):
        for j in range(3):
            chosen, rejected = [40 + 7 * n + j, 60 + j], [90 + 5 * j + n]
            items.append(
                {"prompt": prompt, "chosen": chosen, "rejected": rejected, "objective": ("alpha", "beta")[j % 2]}
            )
    items.append({"prompt": "Life is", "chosen": " good.", "rejected": " hard work.", "objective": "beta"})
    return items


def answer_ids(tokenizer, answer) -> list[int]:
    return (
        answer
        if isinstance(answer, list)
        else tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    )


def served_logprob(oracle, prompt: list[int], answer: list[int], weights: list[float]) -> float:
    """The served mixture's log-prob of an answer, token by token (the plain loop)."""
    return sum(float(oracle.next_logprobs(prompt + answer[:t], weights)[token]) for t, token in enumerate(answer))


def test_pair_eval_margins_equal_the_oracle(admin, oracle, tokenizer):
    candidates = ["alpha", "beta", "test-mix", {"weights": {"alpha": 0.3, "beta": 0.7}, "name": "w37"}]
    options = {"candidates": candidates, "against": "test-mix"}
    response = admin.post("/admin/eval", json={"items": pairs(), "options": options})
    assert response.status_code == 202, response.text
    status = wait_for_job(admin, "eval", response.json()["id"])
    assert status["phase"] == "succeeded", status
    result = status["result"]
    assert result["kind"] == "pairs" and result["pairs"] == {"alpha": 8, "beta": 5}
    rows = [json.loads(line) for line in admin.get(f"/admin/eval/{status['id']}/answers.jsonl").text.splitlines()]
    vectors = {"ref": [1, 0, 0], "alpha": [0, 1, 0], "beta": [0, 0, 1], "test-mix": [0, 0.5, 0.5], "w37": [0, 0.3, 0.7]}
    for item, row in zip(pairs(), rows, strict=True):
        prompt = tokenizer(item["prompt"])["input_ids"]
        chosen, rejected = answer_ids(tokenizer, item["chosen"]), answer_ids(tokenizer, item["rejected"])
        ref = served_logprob(oracle, prompt, chosen, [1, 0, 0]) - served_logprob(oracle, prompt, rejected, [1, 0, 0])
        for name, w in vectors.items():
            expected = served_logprob(oracle, prompt, chosen, w) - served_logprob(oracle, prompt, rejected, w) - ref
            assert row["margins"][name] == pytest.approx(expected, abs=1e-4), (name, item)
        components = [oracle.sequence_logprobs(prompt, a) for a in (chosen, rejected)]
        d = margins(np.array([components[0]]), np.array([components[1]]))[0]
        assert row["linear_margins"]["w37"] == pytest.approx(0.3 * d[0] + 0.7 * d[1], abs=1e-4)
        assert "ref" not in row["linear_margins"]  # the reference is not a mixture of the policies
    by_name = {c["name"]: c for c in result["candidates"]}
    assert by_name["ref"]["objectives"]["alpha"]["accuracy"]["mean"] == 0.5  # every margin 0: ties
    beta_rows = [r for r in rows if r["objective"] == "beta"]
    accuracy = by_name["w37"]["objectives"]["beta"]["accuracy"]
    per_prompt: dict = {}
    for r in beta_rows:
        per_prompt.setdefault(json.dumps(r["prompt"]), []).append(float(r["margins"]["w37"] > 0))
    assert accuracy["mean"] == pytest.approx(np.mean([np.mean(v) for v in per_prompt.values()]))
    # Paired against test-mix: pair by pair, ties half, a prompt's pairs averaged first.
    preferred = lambda m: 1.0 if m > 0 else 0.5 if m == 0 else 0.0  # noqa: E731
    differences: dict = {}
    for r in beta_rows:
        d = preferred(r["margins"]["w37"]) - preferred(r["margins"]["test-mix"])
        differences.setdefault(json.dumps(r["prompt"]), []).append(d)
    paired = by_name["w37"]["objectives"]["beta"]["accuracy_minus_against"]
    assert result["against"] == "test-mix"
    assert paired["mean"] == pytest.approx(np.mean([np.mean(v) for v in differences.values()]))
    assert paired["low"] <= paired["mean"] <= paired["high"]
    assert admin.get(f"/admin/eval/{status['id']}/plot.png").content.startswith(b"\x89PNG")


def test_pair_fit_finds_the_exact_maximiser(admin, oracle, tokenizer):
    items = pairs()
    options = {"iterations": 2000, "beta": 0.5}
    response = admin.post("/admin/fit", json={"items": items, "options": options})
    assert response.status_code == 202, response.text
    status = wait_for_job(admin, "fit", response.json()["id"])
    assert status["phase"] == "succeeded", status
    assert status["method"] == "pairs" and status["progress"]["samples_done"] == 2 * len(items)
    chosen, rejected = [], []
    for item in items:
        prompt = tokenizer(item["prompt"])["input_ids"]
        chosen.append(oracle.sequence_logprobs(prompt, answer_ids(tokenizer, item["chosen"])))
        rejected.append(oracle.sequence_logprobs(prompt, answer_ids(tokenizer, item["rejected"])))
    objectives = np.array([("alpha", "beta").index(i["objective"]) for i in items])
    objective = PairObjective(margins(np.array(chosen), np.array(rejected)), objectives, 2, 0.5)
    target, value = exact_pair_maxmin(objective, 2)
    fitted = np.array([status["weights"]["alpha"], status["weights"]["beta"]])
    assert np.abs(fitted - target).sum() < 0.01, (fitted, target)
    assert status["objective"] == pytest.approx(value, abs=1e-3)
    assert set(status["expected_scores"]) == {"alpha", "beta"}


BAD_LINES = [
    ({"prompt": "a", "chosen": "x", "rejected": "y", "objective": "gamma"}, "unknown objective 'gamma'"),
    (
        {"prompt": "a", "chosen": "", "rejected": "y", "objective": "alpha"},
        "chosen: an answer of a pair must not be empty",
    ),
    ({"prompt": "a", "chosen": " x", "rejected": " x", "objective": "alpha"}, "chosen and rejected are the same"),
    (
        {"prompt": "a", "chosen": [5] * 600, "rejected": "y", "objective": "alpha"},
        "chosen: This model's maximum context",
    ),
    ({"prompt": "a", "chosen": "x", "objective": "alpha"}, "rejected: Field required"),
]


@pytest.mark.parametrize("bad,fragment", BAD_LINES)
def test_bad_pair_lines_are_400_naming_the_line_and_store_nothing(admin, bad, fragment):
    good = {"prompt": "a", "chosen": "x", "rejected": "y", "objective": "alpha"}
    jobs = len(admin.get("/admin/jobs").json()["data"])
    lines = "\n".join(json.dumps(item) for item in (good, bad)) + "\n"
    for path, options in (("/admin/fit", {}), ("/admin/eval", {"candidates": ["alpha"]})):
        upload = admin.post(
            path, files={"file": ("pairs.jsonl", io.BytesIO(lines.encode()))}, data={"options": json.dumps(options)}
        )
        assert upload.status_code == 400, upload.text
        assert "line 2" in upload.json()["error"]["message"] and fragment in upload.json()["error"]["message"]
        body = admin.post(path, json={"items": [good, bad], "options": options})
        assert body.status_code == 400, body.text
        assert "items.1" in body.json()["error"]["message"] and fragment in body.json()["error"]["message"]
    assert len(admin.get("/admin/jobs").json()["data"]) == jobs  # nothing was started, so nothing stored


def test_mixed_forms_another_method_or_an_unknown_candidate_to_compare_with_is_refused(admin):
    pair = {"prompt": "a", "chosen": "x", "rejected": "y", "objective": "alpha"}
    mixed = admin.post("/admin/fit", json={"items": [pair, {"prompt": "b"}]})
    assert mixed.status_code == 400 and "same form" in mixed.json()["error"]["message"]
    judged = admin.post("/admin/fit", json={"items": [pair], "options": {"method": "judged"}})
    assert judged.status_code == 400 and "pair fit" in judged.json()["error"]["message"]
    refused = admin.post("/admin/eval", json={"items": [pair], "options": {"candidates": ["alpha"], "against": "g"}})
    assert refused.status_code == 400 and "not one of the candidates ['ref', 'alpha']" in refused.text
    assert refused.json()["error"]["param"] == "options.against"
