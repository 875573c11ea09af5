"""The shared base compiled serves what it serves eager: the same greedy tokens, log-probs
within 1e-4, whichever components each step runs (mixer.lora.compiled)."""

import asyncio

import httpx
from transformers import AutoTokenizer

from tests.completions import completion_body, token_ids

PROMPT_TEXTS = ["Life is", "The best way to", "Never trust a computer", "Once upon a time"]
# Requests that run one component, another, the reference alone and all of them: sent at once,
# their steps run changing sets of components, which a trace must not freeze.
REQUESTS = [
    {"model": "alpha"},
    {"model": "beta"},
    {"model": "ref"},
    {"mixture": {"weights": {"alpha": 0.3, "beta": 0.7}}},
    {"mixture": {"weights": {"alpha": 1.0}}},
    {},
]


async def answers(url: str, bodies: list[dict]) -> list[dict]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        responses = await asyncio.gather(*(client.post("/v1/completions", json=body) for body in bodies))
    return [response.raise_for_status().json()["choices"][0]["logprobs"] for response in responses]


def test_compiled_serves_what_eager_serves(lora_server, lora_compiled_server, test_manifest):
    tokenizer = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")
    bodies = [
        completion_body(tokenizer(text)["input_ids"], max_tokens=16, **request)
        for text in PROMPT_TEXTS
        for request in REQUESTS
    ]
    eager = asyncio.run(answers(lora_server.url, bodies))
    compiled = asyncio.run(answers(lora_compiled_server.url, bodies))
    for body, expected, got in zip(bodies, eager, compiled, strict=True):
        assert token_ids(got) == token_ids(expected), body
        gaps = [abs(a - b) for a, b in zip(got["token_logprobs"], expected["token_logprobs"], strict=True)]
        assert max(gaps) <= 1e-4, (body, max(gaps))
