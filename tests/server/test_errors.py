"""Bad input gets the OpenAI error envelope with the right status."""

import json
import math

import pytest

CHAT = {"model": "test-mix", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def assert_error(response, status: int, fragment: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment.lower() in error["message"].lower()
    return error


def test_unknown_model_is_404(http):
    error = assert_error(http.post("/v1/chat/completions", json={**CHAT, "model": "gpt-9"}), 404, "gpt-9")
    assert "test-mix" in error["message"] and error["param"] == "model"
    assert_error(http.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404)


@pytest.mark.parametrize(
    "weights,fragment",
    [
        ({"gamma": 1.0}, "unknown policy 'gamma'"),
        ({"alpha": -0.5, "beta": 1.0}, "non-negative"),
        ({"alpha": math.nan}, "finite"),
        ({"alpha": 0.0, "beta": 0.0}, "not all be zero"),
        ({}, "non-empty"),
        ({"ref": 1.0}, "unknown policy 'ref'"),
    ],
)
def test_bad_per_request_weights_are_400(http, weights, fragment):
    # Sent as raw JSON text: NaN is written as the literal that lenient encoders produce.
    body = json.dumps({**CHAT, "mixture": {"weights": weights}}, allow_nan=True)
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, fragment)


def test_weights_on_a_single_component_are_400(http):
    body = {**CHAT, "model": "alpha", "mixture": {"weights": {"alpha": 1.0}}}
    assert_error(http.post("/v1/chat/completions", json=body), 400, "single component")


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "wizard", "content": "hi"}],
        [{"content": "hi"}],
        "hello",
        [{"role": "user", "content": [{"type": "image_url"}]}],
    ],
)
def test_malformed_messages_are_400(http, messages):
    assert_error(http.post("/v1/chat/completions", json={**CHAT, "messages": messages}), 400)


def test_not_json_is_400(http):
    response = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 400)


@pytest.mark.parametrize(
    "field,value", [("temperature", -1), ("n", 0), ("max_tokens", -3), ("top_p", 2.0), ("logit_bias", {"x": 1})]
)
def test_bad_sampling_values_are_400(http, field, value):
    assert_error(http.post("/v1/chat/completions", json={**CHAT, field: value}), 400, field)


def test_prompt_longer_than_max_model_len_is_400(http):
    long_prompt = [50] * 600  # 600 token ids > max_model_len 512
    assert_error(
        http.post("/v1/completions", json={"model": "test-mix", "prompt": long_prompt}), 400, "maximum context length"
    )
    chat = {**CHAT, "messages": [{"role": "user", "content": "word " * 1000}]}
    assert_error(http.post("/v1/chat/completions", json=chat), 400, "maximum context length")
    assert_error(
        http.post("/v1/completions", json={"model": "test-mix", "prompt": "Hi", "max_tokens": 600}), 400, "max_tokens"
    )


def test_token_ids_out_of_vocabulary_are_400(http):
    assert_error(http.post("/v1/completions", json={"model": "test-mix", "prompt": [1, 99999]}), 400, "99999")


def test_unsupported_completion_options_are_400(http):
    assert_error(http.post("/v1/completions", json={"model": "test-mix", "prompt": "a", "suffix": "b"}), 400, "suffix")


def test_oversized_body_is_413(http):
    assert_error(http.post("/v1/completions", content=b"x" * (17 * 1024 * 1024)), 413)


def test_unknown_route_is_404_envelope(http):
    assert_error(http.get("/v1/nothing"), 404)


def test_admin_needs_the_right_token(http):
    assert_error(http.get("/admin/mixture"), 401, "missing")
    assert_error(http.get("/admin/mixture", headers={"Authorization": "Bearer wrong-token-123"}), 401, "wrong")
    assert_error(http.put("/admin/weights", json={"weights": {"alpha": 1}}), 401)


def test_bad_admin_weights_are_400(admin):
    assert_error(admin.put("/admin/weights", json={"weights": {"alpha": -1, "beta": 1}}), 400, "non-negative")
    assert_error(admin.put("/admin/weights", json={"weights": {"zeta": 1}}), 400, "zeta")
    assert_error(admin.put("/admin/weights", json={}), 400, "weights")
