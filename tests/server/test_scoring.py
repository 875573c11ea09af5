"""Recorded per-component sequence log-probs of sampled and supplied responses equal a
transformers loop's, and serving traffic running alongside is untouched."""

import asyncio

import httpx
import pytest
from transformers import AutoTokenizer

from tests.completions import assert_scores_match, completion_body

pytestmark = pytest.mark.both_modes  # on full sub-models and on the shared base (conftest)


@pytest.fixture(scope="module")
def tokenizer(test_manifest):
    return AutoTokenizer.from_pretrained(test_manifest.parent / "ref")


def test_supplied_responses_score_like_the_loop(admin, oracle, tokenizer):
    prompts = [tokenizer("Life is")["input_ids"], tokenizer("Never trust a computer")["input_ids"]]
    responses = [[50, 60, 70, 80, 90, 100, 3], list(range(200, 240)), [7]]
    items = [{"prompt": p, "response": r} for p in prompts for r in responses]
    data = admin.post("/admin/score", json={"items": items}).json()["data"]
    for item, result in zip(items, data, strict=True):
        assert result["token_ids"] == item["response"]
        assert_scores_match(oracle, item["prompt"], result)


def test_text_responses_get_end_of_text(admin, oracle, tokenizer):
    result = admin.post("/admin/score", json={"items": [{"prompt": "Hello", "response": " world"}]}).json()["data"][0]
    assert result["token_ids"][-1] == tokenizer.eos_token_id
    assert_scores_match(oracle, tokenizer("Hello")["input_ids"], result)


def test_sampled_responses_come_from_the_reference_and_score_like_the_loop(admin, oracle, tokenizer):
    body = {"prompts": ["Life is", "The best way to"], "n": 4, "max_tokens": 12, "seed": 3}
    data = admin.post("/admin/sample", json=body).json()["data"]
    assert [len(group["samples"]) for group in data] == [4, 4]
    for prompt, group in zip(body["prompts"], data, strict=True):
        assert len({tuple(s["token_ids"]) for s in group["samples"]}) > 1  # distinct seeds
        for sample in group["samples"]:
            assert 1 <= len(sample["token_ids"]) <= 12
            assert_scores_match(oracle, tokenizer(prompt)["input_ids"], sample)
    again = admin.post("/admin/sample", json=body).json()["data"]
    assert again[0]["samples"][0]["token_ids"] == data[0]["samples"][0]["token_ids"]  # seeded


def test_serving_traffic_is_untouched_while_scoring(admin, server, tokenizer):
    prompt = tokenizer("The best way to")["input_ids"]
    serving = completion_body(prompt, max_tokens=40, mixture={"weights": {"alpha": 0.8, "beta": 0.2}})
    alone = httpx.post(f"{server.url}/v1/completions", json=serving, timeout=60).json()["choices"][0]

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=120, headers=admin.headers) as client:
            fit_traffic = [
                client.post("/admin/sample", json={"prompts": ["Life is"], "n": 8, "max_tokens": 40}),
                client.post("/admin/score", json={"items": [{"prompt": prompt, "response": list(range(100, 140))}]}),
            ]
            served = client.post("/v1/completions", json=serving)
            results = await asyncio.gather(*fit_traffic, served)
            return results[-1].json()["choices"][0]

    assert asyncio.run(together()) == alone


def test_score_input_errors(admin):
    assert admin.post("/admin/score", json={"items": []}).status_code == 400
    response = admin.post("/admin/score", json={"items": [{"prompt": "x", "response": [999999]}]})
    assert response.status_code == 400 and "999999" in response.json()["error"]["message"]
