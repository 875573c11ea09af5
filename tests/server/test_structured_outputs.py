"""Structured outputs through vLLM's own machinery: the grammar's mask applies to whatever
mixture a row samples from (the default, per-request weights, one component)."""

import json
import re

import jsonschema
import openai
import pytest

SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "mood": {"type": "string", "enum": ["good", "bad"]}},
    "required": ["ok", "mood"],
    "additionalProperties": False,
}
TARGETS = [
    ("test-mix", None),
    ("test-mix", {"alpha": 0.9, "beta": 0.1}),
    ("ref", None),
    ("alpha", None),
    ("beta", None),
]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")


def extra(weights: dict | None) -> dict:
    return {"mixture": {"weights": weights}} if weights else {}


@pytest.mark.parametrize("model,weights", TARGETS)
def test_json_schema_chat_output_validates(client, model, weights):
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "How are you?"}],
        max_tokens=200,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "status", "schema": SCHEMA}},
        extra_body=extra(weights),
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), SCHEMA)


def complete(client, model: str, weights: dict | None, prompt: str, constraint: dict, **sampling) -> str:
    """The text of one completion under `constraint` (body fields), for `model` and `weights`."""
    sampling = {"max_tokens": 200, "temperature": 0, **sampling}
    completion = client.completions.create(
        model=model, prompt=prompt, extra_body={**constraint, **extra(weights)}, **sampling
    )
    return completion.choices[0].text


@pytest.mark.parametrize("model,weights", TARGETS[:2])
def test_json_object_and_schema_in_completions(client, model, weights):
    schema_format = {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}}
    jsonschema.validate(json.loads(complete(client, model, weights, "Life is", schema_format)), SCHEMA)
    object_format = {"response_format": {"type": "json_object"}}
    assert isinstance(json.loads(complete(client, model, weights, "Life is", object_format)), dict)


@pytest.mark.both_modes
@pytest.mark.parametrize("model,weights", TARGETS)
def test_regex_and_choice_are_obeyed(client, model, weights):
    year = {"structured_outputs": {"regex": "(19|20)[0-9]{2}"}}
    text = complete(client, model, weights, "The year is", year, max_tokens=20, temperature=1.0, seed=3)
    assert re.fullmatch(r"(19|20)[0-9]{2}", text), text
    choices = ["sunny", "rainy", "foggy"]
    text = (
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Weather?"}],
            max_tokens=20,
            temperature=1.0,
            seed=4,
            extra_body={"structured_outputs": {"choice": choices}, **extra(weights)},
        )
        .choices[0]
        .message.content
    )
    assert text in choices


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"response_format": {"type": "json_schema"}}, "json_schema.schema"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"structured_outputs": {"regex": "a", "choice": ["a"]}}, "exactly one"),
        ({"structured_outputs": {}}, "exactly one"),
        ({"structured_outputs": {"regex": "a"}, "response_format": {"type": "json_object"}}, "either"),
    ],
)
def test_malformed_constraints_are_400(http, body, fragment):
    request = {"model": "test-mix", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, **body}
    response = http.post("/v1/chat/completions", json=request)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


@pytest.mark.both_modes  # the JSON tests above check vLLM's grammars, the same in both modes
@pytest.mark.parametrize("model,weights", [("test-mix", {"alpha": 0.3, "beta": 0.7}), ("beta", None)])
def test_the_mixture_is_what_the_mask_restricts(http, oracle, test_manifest, model, weights):
    """Greedy under a one-digit regex picks the mixture's best digit, and its logprob is the
    mixture renormalised over the digits the grammar allows (the loop, masked by hand)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")
    prompt = tokenizer("The year is")["input_ids"]
    digits = [t for t in range(len(tokenizer)) if re.fullmatch(r"[0-9]", tokenizer.decode([t]))]
    assert digits
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": 1,
        "return_tokens_as_token_ids": True,
        "structured_outputs": {"regex": "[0-9]"},
        **extra(weights),
    }
    lp = http.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
    token = int(lp["tokens"][0].removeprefix("token_id:"))
    expected = oracle.next_logprobs(prompt, oracle.vector(weights or {model: 1.0}))[digits]
    masked = expected - expected.logsumexp(0)
    assert token == digits[int(masked.argmax())]
    assert abs(float(masked.max()) - lp["token_logprobs"][0]) < 1e-4
