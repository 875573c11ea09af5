"""MPO_API_KEYS: /v1 needs one of the keys (OpenAI's 401 envelope otherwise); the openai client
with a key works; /health, /metrics, /tokenize stay open; /v1/models shows no paths; the
playground generates with the key its user types; votes cast blind in the playground are kept
with the key that cast them, across a restart, and export as pairs a pair fit takes."""

import hashlib
import io
import json
import sqlite3

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.browser import TIMEOUT_MS, answer_cards, compare_form, open_playground, set_sampling
from tests.jobs import wait_for_job
from tests.server_process import ServerProcess, admin_client

KEYS = ["key-one-0123456789", "key-two-9876543210"]


@pytest.fixture(scope="module")
def keyed_data(tmp_path_factory):
    return tmp_path_factory.mktemp("keyed")


def keyed(test_manifest, data) -> ServerProcess:
    return ServerProcess(test_manifest, data, data / "server.log", env={"MPO_API_KEYS": ",".join(KEYS)})


@pytest.fixture(scope="module")
def keyed_server(test_manifest, keyed_data):
    with keyed(test_manifest, keyed_data) as process:
        yield process


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic abc"}])
def test_v1_without_a_valid_key_is_401(keyed_server, headers):
    for response in (
        httpx.get(f"{keyed_server.url}/v1/models", headers=headers),
        httpx.post(f"{keyed_server.url}/v1/completions", json={"model": "test-mix", "prompt": "x"}, headers=headers),
    ):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"


def test_the_openai_client_with_either_key_works(keyed_server, test_manifest):
    for key in KEYS:
        client = openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key=key)
        completion = client.completions.create(model="test-mix", prompt="Life is", max_tokens=3, temperature=0)
        assert completion.choices[0].text
        models = client.models.list().data
        assert all(str(test_manifest.parent) not in m.root for m in models)
        assert {m.id: m.model_extra["mpo_role"] for m in models}["ref"] == "reference"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key="nope").models.list()


def test_health_metrics_and_tokenizer_stay_open(keyed_server):
    assert httpx.get(f"{keyed_server.url}/health").status_code == 200
    assert httpx.get(f"{keyed_server.url}/metrics").status_code == 200
    assert httpx.post(f"{keyed_server.url}/tokenize", json={"prompt": "x"}).status_code == 200


def test_the_playground_generates_with_the_api_key_the_user_gives(keyed_server, page):
    page.goto(f"{keyed_server.url}/playground")
    expect(page.locator("#panel-compare .error-text")).to_contain_text("The API key was refused", timeout=TIMEOUT_MS)
    open_playground(page, keyed_server.url, api_key=KEYS[1])
    form = compare_form(page)
    form.get_by_role("button", name="Remove the last column").click()
    set_sampling(form, max_tokens=8)
    form.get_by_role("button", name="Compare", exact=True).click()
    card = answer_cards(page, "compare", 1).first
    assert card.locator(".answer").inner_text()
    assert card.locator("[data-objective]").count() == 2  # the rewards are behind the key too


def test_blind_votes_are_kept_with_their_key_across_a_restart_and_fit_as_pairs(
    keyed_server, test_manifest, keyed_data, page
):
    open_playground(page, keyed_server.url, api_key=KEYS[0])
    page.problems.clear()  # the page's first load, before the key was typed, was refused (401)
    form = compare_form(page)
    form.get_by_label("Blind vote").check()
    expect(form.get_by_role("button", name="Add a column")).to_be_disabled()
    set_sampling(form, max_tokens=12, extra={"temperature": 1.0})
    ballot = page.locator("#panel-compare .ballot")
    for n, (objective, better) in enumerate([("alpha", "A"), ("beta", "B"), ("alpha", "B")]):
        form.get_by_label("Seed").fill(str(n + 1))  # another pair of answers each time
        form.get_by_role("button", name="Compare", exact=True).click()
        expect(ballot).to_be_visible(timeout=TIMEOUT_MS)
        cards = page.locator("#panel-compare .answer-card")
        assert cards.nth(0).locator("h3").inner_text() == "Answer A"  # no setting shown
        assert cards.locator("[data-objective]").count() == 0  # nor any judge's score
        ballot.get_by_label("For the objective").select_option(objective)
        ballot.get_by_role("button", name=f"{better} is better").click()
        expect(ballot).to_have_attribute("data-voted", str(n + 1), timeout=TIMEOUT_MS)
        expect(cards.nth(0).locator("h3")).to_contain_text("was ")  # the settings, shown after the vote
    assert not page.problems, page.problems

    unkeyed = httpx.post(
        f"{keyed_server.url}/v1/mixture/votes",
        json={"prompt": "x", "objective": "alpha", "chosen": "a", "rejected": "b"},
    )
    assert unkeyed.status_code == 401 and unkeyed.json()["error"]["code"] == "invalid_api_key"
    key = {"Authorization": f"Bearer {KEYS[1]}"}
    for bad, fragment in (
        ({"objective": "gamma"}, "unknown objective 'gamma'"),
        ({"chosen": "b"}, "chosen and rejected are the same"),
        ({"rejected": " "}, "must not be empty"),
    ):
        body = {"prompt": "x", "objective": "alpha", "chosen": "a", "rejected": "b"} | bad
        refused = httpx.post(f"{keyed_server.url}/v1/mixture/votes", json=body, headers=key)
        assert refused.status_code == 400 and fragment in refused.json()["error"]["message"], refused.text

    exported = admin_client(keyed_server).get("/admin/preferences.jsonl")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [(line["objective"], line["messages"][0]["content"]) for line in lines] == [
        ("alpha", "What do you think about Monday mornings?"),
        ("beta", "What do you think about Monday mornings?"),
        ("alpha", "What do you think about Monday mornings?"),
    ]
    assert all(set(line) == {"messages", "chosen", "rejected", "objective"} for line in lines)
    keyed_server.stop()

    with keyed(test_manifest, keyed_data) as restarted:  # the same store: the votes are still there
        admin = admin_client(restarted)
        assert admin.get("/admin/preferences.jsonl").text == exported.text
        upload = {"file": ("votes.jsonl", io.BytesIO(exported.content))}
        started = admin.post("/admin/fit", files=upload, data={"options": json.dumps({"iterations": 200})})
        assert started.status_code == 202, started.text
        status = wait_for_job(admin, "fit", started.json()["id"])
        assert status["phase"] == "succeeded" and status["method"] == "pairs", status
        assert sum(status["weights"].values()) == pytest.approx(1.0)
        voters = {hashlib.sha256(KEYS[0].encode()).hexdigest()[:12]}
        with sqlite3.connect(keyed_data / "weights.sqlite") as db:  # the default store, MPO_STORE_PATH unset
            assert {row[0] for row in db.execute("SELECT voter FROM votes")} == voters
