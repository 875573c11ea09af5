"""/tokenize, /detokenize and /tokenizer_info in vLLM's shapes, as lm-eval's remote tokenizer
backend reads them."""

import pytest
from transformers import AutoTokenizer


@pytest.fixture(scope="module")
def tokenizer(test_manifest):
    return AutoTokenizer.from_pretrained(test_manifest.parent / "ref")


def test_tokenize_a_prompt_like_the_tokenizer(http, tokenizer):
    body = http.post("/tokenize", json={"model": "test-mix", "prompt": "Life is short", "return_token_strs": True})
    assert body.status_code == 200
    data = body.json()
    expected = tokenizer("Life is short")["input_ids"]
    assert data["tokens"] == expected and data["count"] == len(expected) and data["max_model_len"] == 512
    assert data["token_strs"] == tokenizer.convert_ids_to_tokens(expected)
    bare = http.post("/tokenize", json={"prompt": "Life is short", "add_special_tokens": False}).json()
    assert bare["tokens"] == tokenizer("Life is short", add_special_tokens=False)["input_ids"]
    assert bare["token_strs"] is None


def test_tokenize_messages_with_the_chat_template(http, tokenizer):
    messages = [{"role": "user", "content": "Hello there"}]
    data = http.post("/tokenize", json={"model": "alpha", "messages": messages}).json()
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert data["tokens"] == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_detokenize_round_trip_and_tokenizer_info(http, tokenizer):
    ids = tokenizer("Never trust a computer", add_special_tokens=False)["input_ids"]
    assert http.post("/detokenize", json={"tokens": ids}).json()["prompt"] == tokenizer.decode(ids)
    info = http.get("/tokenizer_info").json()
    assert info["eos_token"] == tokenizer.eos_token and info["model_max_length"] == 512
    assert info["chat_template"] == tokenizer.chat_template


@pytest.mark.parametrize(
    "path,body,status,param",
    [
        ("/detokenize", {"tokens": [10**9]}, 400, "tokens"),
        ("/tokenize", {"model": "nope", "prompt": "x"}, 404, "model"),
        ("/tokenize", {"nothing": 1}, 400, None),
        ("/tokenize", {"messages": [{"role": "user", "content": "x"}], "continue_final_message": True}, 400, None),
    ],
)
def test_bad_tokenizer_requests_are_openai_errors(http, path, body, status, param):
    response = http.post(path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and (param is None or error["param"] == param)


def test_lm_eval_remote_tokenizer_probe(http):
    """What lm-eval's check_remote_tokenizer_support and RemoteTokenizer read."""
    info = http.get("/tokenizer_info").json()
    assert "eos_token" in info
    tokens = http.post("/tokenize", json={"prompt": "test", "add_special_tokens": False}).json()["tokens"]
    assert isinstance(tokens, list) and tokens
    assert isinstance(http.post("/detokenize", json={"tokens": tokens}).json()["prompt"], str)
