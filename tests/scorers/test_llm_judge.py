"""The LLM judge (scorers.llm_judge) against a real OpenAI-compatible endpoint: this project's
own server on the tests' tiny model, a toy judge whose verdicts mean nothing but are real
replies. With a schema (structured outputs) every verdict is A, B or tie; without one the tiny
model's free text is mostly not a verdict, which is how refusals and malformed replies are
tested. Then the same judge from an eval job and a judged fit on a second server."""

import json
import sqlite3

import httpx
import pytest

from scorers import ScorerError
from scorers.llm_judge import JudgeSettings, LlmJudge, combine, parse_verdict
from tests.jobs import wait_for_job
from tests.server_process import ADMIN_TOKEN, ServerProcess

PROMPTS = ["Describe tea.", "Why is the sky blue?", "Name a fruit."]
ANSWERS = ["Tea is a warm, lovely drink.", "Light scatters.", "An apple."]
# The tiny model pads the schema's JSON with whitespace (a grammar allows it); a real judge writes
# {"better": "A"} in about 7 tokens.
STRUCTURED_TOKENS = 256
REFERENCES = ["Tea is a drink made from leaves of a plant.", "Because of Rayleigh scattering of sunlight.", "Pear."]


def settings(server, tmp_path, **extra) -> JudgeSettings:
    base = {"base_url": f"{server.url}/v1", "model": "ref", "cache": tmp_path / "judge.sqlite", "concurrency": 3}
    return JudgeSettings(**(base | extra))


def cached(path) -> dict[str, str | None]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, reply FROM verdicts"))


def test_verdicts_are_read_strictly_and_the_two_orders_cancel_a_position_bias():
    assert [parse_verdict(r, False) for r in ("A", " b.", "Tie", "Response A", "I cannot judge", "", None)] == [
        "A",
        "B",
        "tie",
        "A",
        None,
        None,
        None,
    ]
    assert parse_verdict('{"better": "tie"}', True) == "tie" and parse_verdict('{"better": "C"}', True) is None
    assert parse_verdict("A", True) is None  # a schema was asked for: plain text is malformed
    assert combine("A", "B") == 1.0 and combine("B", "A") == 0.0  # consistent: a win, a loss
    assert combine("A", "A") == 0.5  # always the first position: no preference at all
    assert combine("tie", "B") == 0.75 and combine(None, "B") == 1.0 and combine(None, None) is None


def test_both_orders_are_asked_and_a_second_ask_is_a_cache_hit(checkpoint_server, tmp_path):
    judge = LlmJudge("positive", settings(checkpoint_server, tmp_path, structured=True, max_tokens=STRUCTURED_TOKENS))
    outcomes = judge.compare(PROMPTS, ANSWERS, REFERENCES)
    usage = judge.report()
    assert usage["calls"] == 6 and usage["cache_hits"] == 0 and usage["malformed"] == 0
    assert usage["prompt_tokens"] > 6 * 50 and usage["completion_tokens"] > 0
    assert usage["criterion"].startswith("Which response has the more positive")
    replies = cached(tmp_path / "judge.sqlite")
    assert len(replies) == 6  # each pair in both orders
    for prompt, answer, reference, outcome in zip(PROMPTS, ANSWERS, REFERENCES, outcomes, strict=True):
        first = json.loads(replies[judge._key(prompt, answer, reference)])["better"]
        second = json.loads(replies[judge._key(prompt, reference, answer)])["better"]
        assert outcome == combine(first, second)
    assert judge.compare(PROMPTS, ANSWERS, REFERENCES) == outcomes
    assert judge.report()["calls"] == 6 and judge.report()["cache_hits"] == 6
    again = LlmJudge(
        "positive", settings(checkpoint_server, tmp_path, structured=True, max_tokens=STRUCTURED_TOKENS)
    )  # the cache is on disk
    assert again.compare(PROMPTS[:1], ANSWERS[:1], REFERENCES[:1]) == outcomes[:1] and again.report()["calls"] == 0


def test_malformed_verdicts_are_counted_and_never_a_win(checkpoint_server, tmp_path):
    judge = LlmJudge("Which response mentions a colour?", settings(checkpoint_server, tmp_path, max_tokens=6))
    outcomes = judge.compare(PROMPTS, ANSWERS, REFERENCES)
    replies = cached(tmp_path / "judge.sqlite")
    verdicts = {key: parse_verdict(reply, False) for key, reply in replies.items()}
    usage = judge.report()
    assert usage["malformed"] == sum(v is None for v in verdicts.values()) > 0, replies
    for prompt, answer, reference, outcome in zip(PROMPTS, ANSWERS, REFERENCES, outcomes, strict=True):
        first = verdicts[judge._key(prompt, answer, reference)]
        second = verdicts[judge._key(prompt, reference, answer)]
        assert outcome == (0.5 if first is None and second is None else combine(first, second))
    assert usage["undecided_pairs"] == sum(
        verdicts[judge._key(p, a, r)] is None and verdicts[judge._key(p, r, a)] is None
        for p, a, r in zip(PROMPTS, ANSWERS, REFERENCES, strict=True)
    )


def test_a_judge_that_is_not_there_is_an_error_not_a_tie(tmp_path, monkeypatch):
    down = JudgeSettings(base_url="http://127.0.0.1:9/v1", model="m", cache=tmp_path / "j.sqlite", max_retries=0)
    with pytest.raises(ScorerError, match="the LLM judge at http://127.0.0.1:9/v1 failed: APIConnectionError"):
        LlmJudge("concise", down).compare(["q"], ["a"], ["b"])
    monkeypatch.delenv("MPO_JUDGE_BASE_URL", raising=False)
    with pytest.raises(ScorerError, match="set MPO_JUDGE_BASE_URL"):
        LlmJudge("concise")


@pytest.fixture(scope="module")
def judged_server(test_manifest, checkpoint_server, tmp_path_factory):
    """A server whose LLM judge is the checkpoint server (structured verdicts)."""
    data = tmp_path_factory.mktemp("judging-server")
    env = {
        "MPO_JUDGE_BASE_URL": f"{checkpoint_server.url}/v1",
        "MPO_JUDGE_MODEL": "ref",
        "MPO_JUDGE_STRUCTURED": "true",
        "MPO_JUDGE_MAX_TOKENS": str(STRUCTURED_TOKENS),
        "MPO_JUDGE_CACHE": str(data / "judge.sqlite"),
    }
    with ServerProcess(test_manifest, data, data / "server.log", env=env) as process:
        with httpx.Client(
            base_url=process.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
        ) as admin:
            yield data, admin


def test_an_eval_takes_the_judges_outcomes_as_wins_and_reports_its_cost(judged_server):
    _, admin = judged_server
    options = {
        "candidates": ["alpha"],
        "objectives": {"tone": "llm:positive", "short": "concise"},
        "samples_per_prompt": 2,
        "max_tokens": 6,
    }
    started = admin.post("/admin/eval", json={"items": [{"prompt": p} for p in PROMPTS], "options": options})
    assert started.status_code == 202, started.text
    status = wait_for_job(admin, "eval", started.json()["id"], 600)
    assert status["phase"] == "succeeded", status
    result = status["result"]
    tone = result["objectives"]["tone"]
    assert tone["pairwise"] and tone["cost"]["calls"] == 2 * 3 * 2 and tone["cost"]["malformed"] == 0
    assert tone["cost"]["prompt_tokens"] > 0
    rows = [json.loads(line) for line in admin.get(f"/admin/eval/{status['id']}/answers.jsonl").text.splitlines()]
    alpha = [r["rewards"]["tone"] for r in rows if r["candidate"] == "alpha"]
    assert set(alpha) <= {0.0, 0.25, 0.5, 0.75, 1.0} and all(
        r["rewards"]["tone"] == 0.5 for r in rows if r["candidate"] == "ref"
    )
    by_name = {c["name"]: c for c in result["candidates"]}
    assert by_name["alpha"]["objectives"]["tone"]["win_rate"]["mean"] == pytest.approx(sum(alpha) / len(alpha))
    assert by_name["ref"]["objectives"]["tone"]["win_rate"]["mean"] == 0.5


def test_a_judged_fit_judges_with_it_and_mpo_refuses_it(judged_server):
    data, admin = judged_server
    before = len(cached(data / "judge.sqlite"))
    items = [{"prompt": p} for p in PROMPTS[:2]]
    options = {
        "method": "judged",
        "scorers": {"tone": "llm:positive", "short": "concise"},
        "samples_per_prompt": 2,
        "max_tokens": 4,
        "iterations": 20,
    }
    started = admin.post("/admin/fit", json={"items": items, "options": options})
    assert started.status_code == 202, started.text
    status = wait_for_job(admin, "fit", started.json()["id"], 600)
    assert status["phase"] == "succeeded", status
    assert sum(status["weights"].values()) == pytest.approx(1.0)
    cost = status["judge_costs"]["tone"]
    assert set(status["judge_costs"]) == {"tone"} and cost["pairs"] == 2 * 2 * 1 + 2 * 2 * 2 and cost["malformed"] == 0
    # round 0: 2 prompts x 2 answers, each against the other; round 1: against both, both orders
    assert len(cached(data / "judge.sqlite")) - before <= 2 * (2 * 2 * 1 + 2 * 2 * 2)
    assert len(cached(data / "judge.sqlite")) > before
    refused = admin.post("/admin/fit", json={"items": items, "options": options | {"scale": "standard"}})
    assert refused.status_code == 400 and "use scale 'win'" in refused.json()["error"]["message"]
    mpo = {"scorers": {"alpha": "llm:positive", "beta": "concise"}, "beta": 0.5}
    refused = admin.post("/admin/fit", json={"items": items, "options": mpo})
    assert refused.status_code == 400 and "compares two answers" in refused.json()["error"]["message"]
