"""A serving workload: requests arriving over time with varied prompt and output lengths.

The server meets it with continuous batching (requests join and leave the running batch
every step). The loop meets it the way decode-time mixing code does: when idle, it takes up
to `batch_size` requests that have arrived, decodes them as one static batch until the
longest is done, and only then looks at the queue again.
"""

import time
from pathlib import Path

import numpy as np

from bench.load import Outcome, Request


def poisson_requests(
    tokenizer_dir: Path,
    count: int,
    rate: float,
    prompt_tokens: tuple[int, int],
    output_tokens: tuple[int, int],
    seed: int = 0,
) -> list[Request]:
    """`count` requests, exponential gaps at `rate` per second, lengths uniform in the ranges."""
    from bench.throughput import corpus_token_runs

    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, count))
    arrivals -= arrivals[0]
    lengths = rng.integers(prompt_tokens[0], prompt_tokens[1] + 1, count)
    outputs = rng.integers(output_tokens[0], output_tokens[1] + 1, count)
    runs = corpus_token_runs(tokenizer_dir, count, prompt_tokens[1])
    return [
        Request(prompt=run[:length], max_tokens=int(out), arrival=float(at))
        for run, length, out, at in zip(runs, lengths, outputs, arrivals, strict=True)
    ]


def serve_static_batches(
    model_dirs: list[str], weights: list[float], requests: list[Request], batch_size: int
) -> list[Outcome]:
    """Serve the workload in real time with the transformers loop in static batches."""
    from bench.loop import load_models, mixed_greedy

    models = load_models(model_dirs)
    mixed_greedy(models, weights, [requests[0].prompt], 2)  # warm-up, as the server's start-up does
    pending = sorted(requests, key=lambda r: r.arrival)
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    while pending:
        now = time.perf_counter() - start
        if pending[0].arrival > now:
            time.sleep(pending[0].arrival - now)
            continue
        batch = [r for r in pending if r.arrival <= now][:batch_size]
        pending = pending[len(batch) :]
        mixed_greedy(models, weights, [r.prompt for r in batch], max(r.max_tokens for r in batch))
        done = time.perf_counter() - start
        outcomes += [Outcome(arrival=r.arrival, sent=now, done=done, output_tokens=r.max_tokens) for r in batch]
    return outcomes
