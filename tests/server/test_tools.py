"""Tool calls as agents use them, through the openai package and the openai-agents SDK: a named
function and `required` (forced by vLLM's structured outputs), `auto` read by the manifest's
parser (the tests' manifest names hermes), a tool's result in the next turn, streamed
tool-call deltas, and bad tool requests refused in the OpenAI error shape."""

import json
import re

import openai
import pytest

from server.exceptions import InvalidRequest
from server.serving.tools import ToolCalling
from tests.server.tools import LOOSE_WEATHER, NAMED, QUESTION, WEATHER, run_weather_agent


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def ask(client, **extra):
    options = {"model": "test-mix", "messages": QUESTION, "tools": [WEATHER], "max_tokens": 200, "temperature": 0}
    return client.chat.completions.create(**(options | extra))


def streamed_calls(stream) -> tuple[list[dict], str | None, str]:
    """Tool calls put together from streamed deltas, as the openai docs do; the finish reason
    and any content."""
    calls: dict[int, dict] = {}
    finish, content = None, ""
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or piece.id
                call["name"] += (piece.function.name or "") if piece.function else ""
                call["arguments"] += (piece.function.arguments or "") if piece.function else ""
            finish = choice.finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish, content


@pytest.mark.parametrize("tool_choice", [NAMED, "required"])
def test_a_forced_call_is_parsed_streamed_or_not(client, tool_choice):
    response = ask(client, tool_choice=tool_choice, parallel_tool_calls=False)
    choice = response.choices[0]
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Rome")
    assert choice.message.content is None
    assert choice.finish_reason == ("stop" if tool_choice == NAMED else "tool_calls")

    calls, finish, content = streamed_calls(
        ask(client, tool_choice=tool_choice, parallel_tool_calls=False, stream=True)
    )
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", json.loads(call.function.arguments))
    ]
    assert calls[0]["id"] and finish == choice.finish_reason and content == ""


def test_auto_reads_calls_with_the_manifests_parser(client):
    """The output is forced (a regex) to a hermes-style call; tool_choice auto finds it."""
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    extra = {"tools": [LOOSE_WEATHER], "extra_body": {"structured_outputs": {"regex": re.escape(text)}}}
    choice = ask(client, **extra).choices[0]
    (call,) = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Rome"})
    assert choice.finish_reason == "tool_calls" and not choice.message.content

    calls, finish, content = streamed_calls(ask(client, stream=True, **extra))
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("get_weather", {"city": "Rome"})]
    assert finish == "tool_calls" and content == ""


def test_without_a_call_auto_answers_with_text(client):
    choice = ask(client, tools=[LOOSE_WEATHER], max_tokens=6, extra_body={"min_tokens": 2}).choices[0]
    assert choice.message.tool_calls is None and choice.message.content


def test_a_second_turn_with_the_tools_result_answers(client, http):
    first = ask(client, tool_choice=NAMED).choices[0].message
    call = first.tool_calls[0]
    history = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 18 degrees"},
    ]
    second = client.chat.completions.create(
        model="test-mix",
        messages=history,
        tools=[LOOSE_WEATHER],
        max_tokens=8,
        temperature=0,
        extra_body={"min_tokens": 2},
    )
    assert second.choices[0].message.content and second.choices[0].message.tool_calls is None
    # The tool's result is in the prompt the mixture saw (the tests' template joins contents).
    rendered = http.post("/tokenize", json={"model": "test-mix", "messages": history}).json()["tokens"]
    result = http.post("/tokenize", json={"prompt": "Sunny, 18 degrees", "add_special_tokens": False}).json()
    assert any(rendered[i : i + result["count"]] == result["tokens"] for i in range(len(rendered)))
    assert second.usage.prompt_tokens == len(rendered)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"tools": []}, "must not be an empty array"),
        ({"tool_choice": "required"}, "tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "does not match"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
        ({"messages": [{"role": "tool", "content": "18 C"}]}, "tool_call_id"),
        ({"messages": [{"role": "user", "content": "hi", "tool_calls": []}]}, "assistant"),
    ],
)
def test_bad_tool_requests_are_400(http, body, fragment):
    request = {"model": "test-mix", "messages": QUESTION, "max_tokens": 4} | body
    response = http.post("/v1/chat/completions", json=request)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"


def test_auto_without_a_parser_is_refused_with_a_way_out():
    """As vLLM serve without --tool-call-parser: auto cannot read calls; forced ones still work."""
    tools = ToolCalling(tokenizer=None, parser_name=None)
    body = {"model": "m", "messages": QUESTION, "tools": [WEATHER]}
    with pytest.raises(InvalidRequest, match="tool_call_parser"):
        tools.prepare(body)
    assert tools.prepare(body | {"tool_choice": "required"}) is not None
    assert tools.prepare({"model": "m", "messages": QUESTION}) is None


def test_an_agent_runs_a_tool_to_a_final_answer(server):
    """The openai-agents SDK on chat completions runs a tool to a final answer."""
    asked, result = run_weather_agent(server.url, responses_api=False)
    assert asked and set(asked) <= {"Paris", "Rome"}
    assert isinstance(result.final_output, str) and result.final_output
