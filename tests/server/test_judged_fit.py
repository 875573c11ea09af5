"""The judged fit through the admin API, against the exact maximiser of its objective.

With one-token answers every answer's probability is exact (the oracle's next-token
distributions): E_lambda[win_k] = sum_v pi_lambda(v) P(r_k(v) beats r_k(v'), v' ~ pi_ref), ties
half. The fit sees only samples and the scorers' rewards; the grid over lambda sees everything.
The judges reward what each policy prefers to the reference (objective 'a': log pi_alpha -
log pi_ref of the answer; 'b': beta's, less 0.3 of alpha's, so the two conflict unevenly), read
from a table the test writes: a user's python scorer, with a sharp maximum inside the simplex."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from demo.tiny.pretrain import read_corpus
from tests.jobs import wait_for_job

SCORER = """
import json
from pathlib import Path

TABLE = json.loads((Path(__file__).parent / "rewards.json").read_text())


def a(prompt, response):
    return TABLE[prompt].get(response, [0.0, 0.0])[0]


def b(prompt, response):
    return TABLE[prompt].get(response, [0.0, 0.0])[1]
"""


@pytest.fixture(scope="module")
def problem(oracle, test_manifest, tmp_path_factory):
    """(prompts, scorers, exact values of min_k E[win_k] at alpha's weight on a grid, exact(alpha))."""
    tokenizer = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")
    prompts = [" ".join(t.split()[:3]) for t in read_corpus()[200:216]]
    with torch.no_grad():
        logprobs = np.array(
            [[oracle.next_logprobs(tokenizer(p)["input_ids"], w).double().numpy() for w in np.eye(3)] for p in prompts]
        )  # (N, C, V)
    texts = [tokenizer.decode([v], skip_special_tokens=True) for v in range(logprobs.shape[2])]
    first = {}  # a text's reward is its first token's: the scorer sees text, not ids
    for v, text in enumerate(texts):
        first.setdefault(text, v)
    same = np.array([first[t] for t in texts])
    alpha, beta = logprobs[:, 1] - logprobs[:, 0], logprobs[:, 2] - logprobs[:, 0]
    rewards = np.stack([alpha, beta - 0.3 * alpha], axis=-1)[:, same]  # (N, V, K)
    folder = tmp_path_factory.mktemp("judges")
    table = {p: {t: rewards[n, first[t]].tolist() for t in first} for n, p in enumerate(prompts)}
    (folder / "rewards.json").write_text(json.dumps(table))
    (folder / "judges.py").write_text(SCORER)
    scorers = {"a": f"python:{folder / 'judges.py'}:a", "b": f"python:{folder / 'judges.py'}:b"}
    diff = rewards[:, :, None, :] - rewards[:, None, :, :]  # (N, V, V', K): v against v'
    beats = (diff > 0) + 0.5 * (diff == 0)

    def distribution(z: np.ndarray) -> np.ndarray:
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def exact(weight: float, temperature: float = 1.0) -> np.ndarray:
        """min over k comes later: each E[win_k], the mixture and the reference both at `temperature`
        (an eval samples every candidate at its temperature)."""
        win = np.einsum("nw,nvwk->nvk", distribution(logprobs[:, 0] / temperature), beats)  # P(v beats ref's answer)
        p = distribution((weight * logprobs[:, 1] + (1 - weight) * logprobs[:, 2]) / temperature)
        return np.einsum("nv,nvk->k", p, win) / len(prompts)

    grid = np.linspace(0, 1, 1001)
    return prompts, scorers, grid, np.array([exact(w).min() for w in grid]), exact


def fit(admin, prompts, scorers, **options) -> dict:
    body = {
        "items": [{"prompt": p} for p in prompts],
        "options": {"method": "judged", "scorers": scorers, "max_tokens": 1, "samples_per_prompt": 256}
        | {"iterations": 600, "seed": 3}
        | options,
    }
    response = admin.post("/admin/fit", json=body)
    assert response.status_code == 202, response.text
    status = wait_for_job(admin, "fit", response.json()["id"], 600)
    assert status["phase"] == "succeeded", status
    return status


def test_judged_fit_finds_the_exact_maximiser_and_rounds_judge_it_better(admin, problem):
    prompts, scorers, grid, values, exact = problem
    target, top = grid[int(np.argmax(values))], values.max()
    assert 0.2 < target < 0.8  # inside: the test can tell a fit from a guess at a vertex or the centre
    reports = {}
    for name, every in (("reference samples", 0), ("on-policy rounds", 200)):
        status = fit(admin, prompts, scorers, resample_every=every)
        weight = status["weights"]["alpha"]
        true = exact(weight).min()
        error = abs(status["objective"] - true)
        reports[name] = {
            "alpha": weight,
            "exact": true,
            "error": error,
            "ess": status["ess"],
            "rounds": status["rounds"],
        }
        print(
            f"{name}: alpha {weight:.3f} (exact maximiser {target:.3f}); min_k E[win] exact {true:.4f} "
            f"(max {top:.4f}), estimated {status['objective']:.4f}: error {error:.4f}; ESS share {status['ess']:.3f}"
        )
    rounds = reports["on-policy rounds"]
    assert abs(rounds["alpha"] - target) < 0.05 and top - rounds["exact"] < 0.005, reports
    assert rounds["error"] < reports["reference samples"]["error"], reports
    assert rounds["ess"] > reports["reference samples"]["ess"], reports
    history = rounds["rounds"]
    assert len(history) == 3 and history[0]["proposal"] is None and history[1]["proposal"] is not None
    # One-token answers: the served mixture and the sequence-level product are one family, so
    # an on-policy round's two estimates differ by the importance weights' noise only.
    assert max(abs(history[2]["served"][o] - history[2]["sequence"][o]) for o in scorers) < 0.01, history


def test_at_an_evals_temperature_the_fit_finds_the_tempered_maximiser(admin, problem):
    """Answers sampled at 0.7 (as an eval at 0.7 samples them): the fit is of the mixture at 0.7,
    whose maximiser differs from the one at 1."""
    prompts, scorers, grid, _, exact = problem
    values = np.array([exact(w, 0.7).min() for w in grid])
    target, top = grid[int(np.argmax(values))], values.max()
    status = fit(admin, prompts, scorers, resample_every=200, temperature=0.7)
    weight = status["weights"]["alpha"]
    print(f"temperature 0.7: alpha {weight:.3f} (exact maximiser {target:.3f}); exact {exact(weight, 0.7).min():.4f}")
    assert status["params"]["temperature"] == 0.7
    assert abs(weight - target) < 0.05 and top - exact(weight, 0.7).min() < 0.005
    assert abs(status["objective"] - exact(weight, 0.7).min()) < 0.005
