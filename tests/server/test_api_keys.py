"""MPO_API_KEYS: /v1 needs one of the keys (OpenAI's 401 envelope otherwise); the openai client
with a key works; /health, /metrics, /tokenize stay open; /v1/models shows no paths; the
playground generates with the key its user types."""

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.browser import TIMEOUT_MS, answer_cards, compare_form, open_playground, set_sampling
from tests.server_process import ServerProcess

KEYS = ["key-one-0123456789", "key-two-9876543210"]


@pytest.fixture(scope="module")
def keyed_server(test_manifest, tmp_path_factory):
    data = tmp_path_factory.mktemp("keyed")
    with ServerProcess(test_manifest, data, data / "server.log", env={"MPO_API_KEYS": ",".join(KEYS)}) as process:
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
