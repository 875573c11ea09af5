"""The Responses API through the openai package: plain and streamed, for the mixture, a stored
weight set and one component, each equal to the chat completion it amounts to; function tools
and their results; the agents SDK's default (Responses) model; bad input in the error shape."""

import json

import openai
import pytest

from tests.server.tools import NAMED_RESPONSES, QUESTION, WEATHER_RESPONSES, run_weather_agent


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def chat_text(client, model: str, **extra) -> tuple[str, int]:
    """What chat answers for the same conversation, greedy: the Responses text must equal it."""
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
        max_completion_tokens=12,
        temperature=0,
        **extra,
    )
    return response.choices[0].message.content, response.usage.completion_tokens


@pytest.fixture
def weight_set(admin) -> int:
    admin.put("/admin/weights", json={"weights": {"alpha": 0.8, "beta": 0.2}}).raise_for_status()
    return admin.get("/admin/mixture").json()["active_weight_set"]


@pytest.mark.parametrize("target", ["mixture", "weight_set", "component"])
def test_plain_and_streamed_responses_equal_chat(client, request, target):
    model = {"mixture": "test-mix", "component": "beta"}.get(target)
    if model is None:
        model = f"test-mix@{request.getfixturevalue('weight_set')}"
    expected, tokens = chat_text(client, model)
    options = {"model": model, "instructions": "Be brief.", "max_output_tokens": 12, "temperature": 0}
    response = client.responses.create(input=QUESTION[0]["content"], **options)
    assert response.object == "response" and response.id.startswith("resp_") and response.model == model
    assert response.output_text == expected and response.output[0].type == "message"
    assert response.usage.output_tokens == tokens
    assert response.usage.total_tokens == response.usage.input_tokens + tokens
    assert response.status in ("completed", "incomplete")
    if response.status == "incomplete":
        assert response.incomplete_details.reason == "max_output_tokens"

    events = list(client.responses.create(input=QUESTION, stream=True, **options))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response." + response.status
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == expected == events[-1].response.output_text
    assert events[-1].response.usage.output_tokens == tokens


def test_per_request_weights_are_the_mixture_extension(client):
    weights = {"alpha": 0.1, "beta": 0.9}
    expected, _ = chat_text(client, "test-mix", extra_body={"mixture": {"weights": weights}})
    response = client.responses.create(
        model="test-mix",
        instructions="Be brief.",
        input=QUESTION,
        max_output_tokens=12,
        temperature=0,
        extra_body={"mixture": {"weights": weights}},
    )
    assert response.output_text == expected


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_and_its_output(client, stream):
    options = {"model": "test-mix", "tools": [WEATHER_RESPONSES], "max_output_tokens": 200, "temperature": 0}
    if stream:
        events = list(client.responses.create(input=QUESTION, tool_choice=NAMED_RESPONSES, stream=True, **options))
        done = [e.item for e in events if e.type == "response.output_item.done"]
        arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        (call,) = done
        assert call.arguments == arguments == events[-1].response.output[0].arguments
    else:
        (call,) = client.responses.create(input=QUESTION, tool_choice=NAMED_RESPONSES, **options).output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments)["city"] in ("Paris", "Rome")

    turn = [
        *QUESTION,
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
    ]
    turn.append({"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 18 degrees"})
    answer = client.responses.create(input=turn, extra_body={"min_tokens": 2}, **options | {"max_output_tokens": 8})
    assert answer.output_text and answer.output[0].type == "message"


def test_an_agent_on_the_responses_api(server):
    """The openai-agents SDK's default model speaks the Responses API."""
    asked, result = run_weather_agent(server.url, responses_api=True)
    assert asked and set(asked) <= {"Paris", "Rome"}
    assert isinstance(result.final_output, str) and result.final_output


@pytest.mark.parametrize(
    "body,status,param",
    [
        ({"previous_response_id": "resp_123"}, 400, "previous_response_id"),
        ({"background": True}, 400, "background"),
        ({"model": "nope"}, 404, "model"),
        ({"input": []}, 400, None),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, 400, None),
        ({"tools": [{"type": "web_search"}]}, 400, None),
        ({"max_output_tokens": 0}, 400, "max_output_tokens"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, 400, None),
        ({"tools": [WEATHER_RESPONSES], "tool_choice": {"type": "function", "name": "nope"}}, 400, None),
    ],
)
def test_bad_input_gets_the_error_envelope(http, body, status, param):
    request = {"model": "test-mix", "input": "Hi", "max_output_tokens": 4} | body
    response = http.post("/v1/responses", json=request)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
