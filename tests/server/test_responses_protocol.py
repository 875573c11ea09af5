"""How a Responses request reads as a chat request (pure: no engine)."""

import pytest
from pydantic import ValidationError

from server.serving.responses_protocol import ResponsesRequest


def test_a_conversation_with_calls_becomes_chat_messages():
    request = ResponsesRequest.model_validate(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"type": "reasoning", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"city": "Paris"}'},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"city": "Rome"}'},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny, rain."}]},
            ],
        }
    )
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}},
        {"id": "c2", "type": "function", "function": {"name": "w", "arguments": '{"city": "Rome"}'}},
    ]
    assert request.chat_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        {"role": "assistant", "content": "Sunny, rain."},
    ]


def test_options_map_to_their_chat_fields():
    body = ResponsesRequest.model_validate(
        {
            "model": "m",
            "input": "hi",
            "max_output_tokens": 7,
            "temperature": 0,
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "mixture": {"weights": {"a": 1}},
        }
    ).chat_body()
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_completion_tokens"] == 7 and body["temperature"] == 0
    assert body["tools"] == [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "w"}}
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert body["mixture"] == {"weights": {"a": 1}}


@pytest.mark.parametrize(
    "body",
    [
        {"input": []},
        {"input": [{"type": "reasoning"}]},
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        {"tools": [{"type": "web_search"}]},
        {"text": {"format": {"type": "json_schema"}}},
    ],
)
def test_what_cannot_be_served_is_refused(body):
    with pytest.raises(ValidationError):
        ResponsesRequest.model_validate({"model": "m", "input": "hi"} | body)
