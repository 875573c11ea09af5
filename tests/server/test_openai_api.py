"""What existing OpenAI clients send and parse, through the official `openai` client and raw HTTP."""

import json

import httpx
import openai
import pytest


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_chat_completion(client):
    response = client.chat.completions.create(
        model="test-mix", messages=[{"role": "user", "content": "Hello"}], max_tokens=5, temperature=0
    )
    assert response.object == "chat.completion" and response.id.startswith("chatcmpl-")
    choice = response.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.completion_tokens <= 5
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_chat_accepts_text_parts_system_messages_and_unknown_fields(client):
    response = client.chat.completions.create(
        model="test-mix",
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]},
        ],
        max_completion_tokens=3,
        extra_body={"store": False, "metadata": {"a": "b"}, "stop": None, "logprobs": None},
        user="someone",
    )
    assert response.usage.completion_tokens <= 3


def test_chat_logprobs_shape(client):
    response = client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, logprobs=True, top_logprobs=3
    )
    content = response.choices[0].logprobs.content
    assert len(content) == response.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0 and isinstance(entry.bytes, list) and len(entry.top_logprobs) == 3
        tops = [t.logprob for t in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)


def test_streamed_chat_with_openai_client(client):
    stream = client.chat.completions.create(
        model="test-mix",
        messages=[{"role": "user", "content": "Tell me"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"mixture": {"weights": {"alpha": 0.7, "beta": 0.3}}},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 6
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["length"], ["stop"])


def test_stream_is_sse_ending_with_done(server):
    body = {"model": "test-mix", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def test_completion_and_stream_agree_greedy(client):
    plain = client.completions.create(model="test-mix", prompt="Once upon", max_tokens=8, temperature=0)
    assert plain.object == "text_completion" and plain.id.startswith("cmpl-")
    streamed = client.completions.create(model="test-mix", prompt="Once upon", max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == plain.choices[0].text


def test_completion_prompt_forms_and_choice_indices(client, test_manifest):
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")("Life is")["input_ids"]
    by_text = client.completions.create(model="test-mix", prompt="Life is", max_tokens=4, temperature=0)
    by_ids = client.completions.create(model="test-mix", prompt=ids, max_tokens=4, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    batch = client.completions.create(model="test-mix", prompt=[ids, ids], max_tokens=2, n=2, temperature=1, seed=1)
    assert sorted(c.index for c in batch.choices) == [0, 1, 2, 3]
    batch = client.completions.create(model="test-mix", prompt=["a", "b", "c"], max_tokens=2)
    assert sorted(c.index for c in batch.choices) == [0, 1, 2]


def test_echo_with_max_tokens_zero_returns_only_the_prompt(client):
    response = client.completions.create(model="test-mix", prompt="Life is short", max_tokens=0, echo=True, logprobs=2)
    choice = response.choices[0]
    assert choice.text == "Life is short"
    lp = choice.logprobs
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[-1] < len(choice.text)
    assert response.usage.completion_tokens == 0


def test_echo_with_generation_appends_to_the_prompt(client):
    response = client.completions.create(model="test-mix", prompt="Life is", max_tokens=3, echo=True, logprobs=0)
    choice = response.choices[0]
    assert choice.text.startswith("Life is")
    assert len(choice.logprobs.tokens) == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stop_string_ends_the_text(client):
    free = client.completions.create(model="alpha", prompt="Life is", max_tokens=12, temperature=0).choices[0].text
    stop = free[3:5]
    if not stop.strip():
        pytest.skip("greedy continuation has no usable stop string")
    stopped = client.completions.create(model="alpha", prompt="Life is", max_tokens=12, temperature=0, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop" and stop not in stopped.choices[0].text


def test_models_list(client, server):
    ids = [m.id for m in client.models.list()]
    assert ids[:4] == ["test-mix", "ref", "alpha", "beta"]
    assert ids[4:] and all(i.startswith("test-mix@") for i in ids[4:])  # stored weight sets
    raw = httpx.get(f"{server.url}/v1/models").json()
    assert raw["object"] == "list" and all(m["max_model_len"] == 512 for m in raw["data"])


def test_component_models_differ(client):
    texts = {
        model: client.completions.create(model=model, prompt="The", max_tokens=8, temperature=0).choices[0].text
        for model in ("ref", "alpha", "beta")
    }
    assert len(set(texts.values())) == 3
