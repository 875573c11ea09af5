"""Seeded requests whose prompts are prefilled in chunks (other prompts fill the step's token
budget) neither kill the engine on CPU nor change what they sample (mixer/seeded_prefill.py)."""

import asyncio
import random

import httpx

PROMPTS = 10
PROMPT_TOKENS = 450  # ten of them exceed the engine's 2,048-token step budget: chunked prefill


def body(prompt: list[int], seed: int) -> dict:
    return {
        "model": "test-mix",
        "prompt": prompt,
        "max_tokens": 6,
        "temperature": 1.0,
        "seed": seed,
        "ignore_eos": True,
        "return_tokens_as_token_ids": True,
        "logprobs": 0,
    }


async def complete_all(url: str, bodies: list[dict]) -> list[list[str]]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        responses = await asyncio.gather(*(client.post("/v1/completions", json=b) for b in bodies))
    for response in responses:
        assert response.status_code == 200, response.text
    return [r.json()["choices"][0]["logprobs"]["tokens"] for r in responses]


def test_seeded_requests_sample_the_same_with_and_without_chunked_prefill(server, http):
    rng = random.Random(2024)  # prompts no other test has put in the prefix cache
    prompts = [[rng.randrange(3, 500) for _ in range(PROMPT_TOKENS)] for _ in range(PROMPTS)]
    bodies = [body(p, seed=100 + n) for n, p in enumerate(prompts)]
    together = asyncio.run(complete_all(server.url, bodies))
    assert http.get("/health").status_code == 200
    alone = [asyncio.run(complete_all(server.url, [b]))[0] for b in bodies]
    assert together == alone
