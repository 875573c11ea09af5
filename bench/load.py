"""Streaming load against any OpenAI-compatible server, and its latency statistics.

Every request is a streamed /v1/completions call with token-id prompts (exact lengths),
greedy, `ignore_eos` (exact output lengths) and a usage chunk (exact token counts). Time to
first token runs from sending to the first chunk with a choice; inter-token latency is the
gap between consecutive such chunks.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass(frozen=True)
class Request:
    prompt: list[int]
    max_tokens: int
    arrival: float = 0.0  # seconds after the start; used by open-loop runs


@dataclass
class Outcome:
    arrival: float
    sent: float
    done: float = 0.0
    chunk_times: list[float] = field(default_factory=list)
    output_tokens: int = 0

    @property
    def ttft(self) -> float:
        return self.chunk_times[0] - self.sent

    @property
    def latency(self) -> float:
        """From arrival (not sending) to the last byte: queueing in the client counts."""
        return self.done - self.arrival

    @property
    def gaps(self) -> list[float]:
        return list(np.diff(self.chunk_times))


async def stream_one(
    client: httpx.AsyncClient, model: str, request: Request, start: float, extra: dict | None = None
) -> Outcome:
    body = {
        **(extra or {}),
        "model": model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    outcome = Outcome(arrival=request.arrival, sent=time.perf_counter() - start)
    async with client.stream("POST", "/v1/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:500]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            if chunk.get("choices"):
                outcome.chunk_times.append(time.perf_counter() - start)
            if chunk.get("usage"):
                outcome.output_tokens = chunk["usage"]["completion_tokens"]
    outcome.done = time.perf_counter() - start
    if outcome.output_tokens != request.max_tokens:
        raise RuntimeError(f"asked for {request.max_tokens} tokens, got {outcome.output_tokens}")
    return outcome


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=None))


async def _open_loop(url: str, model: str, requests: list[Request], extra: dict | None) -> list[Outcome]:
    async with _client(url) as client:
        start = time.perf_counter()

        async def at_arrival(request: Request) -> Outcome:
            await asyncio.sleep(max(0.0, request.arrival - (time.perf_counter() - start)))
            return await stream_one(client, model, request, start, extra)

        return list(await asyncio.gather(*map(at_arrival, requests)))


async def _closed_loop(
    url: str, model: str, requests: list[Request], concurrency: int, extra: dict | None
) -> list[Outcome]:
    async with _client(url) as client:
        start = time.perf_counter()
        queue = list(reversed(requests))
        outcomes: list[Outcome] = []

        async def user() -> None:
            while queue:
                request = queue.pop()
                outcome = await stream_one(client, model, request, start, extra)
                outcome.arrival = outcome.sent  # a closed loop sends as soon as a user is free
                outcomes.append(outcome)

        await asyncio.gather(*(user() for _ in range(concurrency)))
        return outcomes


def open_loop(url: str, model: str, requests: list[Request], extra: dict | None = None) -> list[Outcome]:
    """Each request is sent at its arrival time, whether or not earlier ones are done.
    `extra`: body fields added to every request."""
    return asyncio.run(_open_loop(url, model, requests, extra))


def closed_loop(
    url: str, model: str, requests: list[Request], concurrency: int, extra: dict | None = None
) -> list[Outcome]:
    """`concurrency` users, each sending its next request when the last one finished.
    `extra`: body fields added to every request."""
    return asyncio.run(_closed_loop(url, model, requests, concurrency, extra))


def percentiles(values: list[float], scale: float = 1.0) -> dict:
    return {"p50": float(np.percentile(values, 50)) * scale, "p99": float(np.percentile(values, 99)) * scale}


def summarise(*rounds: list[Outcome]) -> dict:
    """Throughput over the runs (each from first arrival to last byte) and latency percentiles
    over all their requests."""
    outcomes = [o for outcomes in rounds for o in outcomes]
    wall = sum(max(o.done for o in run) - min(o.arrival for o in run) for run in rounds)
    tokens = sum(o.output_tokens for o in outcomes)
    summary = {
        "requests": len(outcomes),
        "output_tokens": tokens,
        "wall_s": wall,
        "requests_per_s": len(outcomes) / wall,
        "tokens_per_s": tokens / wall,
        "latency_s": percentiles([o.latency for o in outcomes]),
    }
    if all(o.chunk_times for o in outcomes):  # streamed: token timings too
        summary["ttft_ms"] = percentiles([o.ttft for o in outcomes], 1e3)
        gaps = [g for o in outcomes for g in o.gaps]
        if gaps:  # none when every request asked for one token
            summary["itl_ms"] = percentiles(gaps, 1e3)
    return summary
