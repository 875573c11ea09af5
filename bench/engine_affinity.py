"""Where vLLM's EngineCore process runs, side by side on one server: free (what vLLM does) or
pinned to the cores of its worker. Not a test: it prints the ratios.

    .venv/bin/python -m bench.engine_affinity     # the tiny demo; about 3 minutes

Why it matters: vLLM's shared-memory message queues busy-spin (`sched_yield`) for a second after
every read (vllm/distributed/device_communicators/shm_broadcast.py, `busy_loop_s=1`), so while
the engine decodes, the EngineCore process spins on a core its worker does not hold -- the core
the API server, the clients and the database need. On a 2-core machine with the worker bound to
core 0, pinning EngineCore beside it gave the API server its core back (measured 2026-12-03:
/health median 841 ms -> 43 ms under four streams, eight concurrent completions 338 -> 1626
tokens/s, one alone 306 -> 283). The server does not pin it yet: this bench is the evidence
for that decision, and for the default binding on small machines.
"""

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from server.cli.main import demo_manifest
from server.cli.processes import MpoServer
from server.settings import Settings

TOKENS = 200


def completion(url: str, model: str) -> int:
    body = {"model": model, "prompt": "The sea is", "max_tokens": TOKENS, "ignore_eos": True}
    return httpx.post(f"{url}/v1/completions", json=body, timeout=600).json()["usage"]["completion_tokens"]


def tokens_per_s(url: str, model: str, concurrent: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrent) as pool:
        tokens = sum(pool.map(lambda _: completion(url, model), range(concurrent)))
    return tokens / (time.perf_counter() - began)


def keep_streaming(url: str, model: str, stop) -> None:
    """Four streams, each started again when it ends, until `stop` is set."""
    body = {"model": model, "prompt": "The sea is", "max_tokens": TOKENS, "ignore_eos": True, "stream": True}

    def one(_) -> None:
        while not stop.is_set():
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=600) as response:
                for _ in response.iter_lines():
                    pass

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(4)))


def health_under_streams(url: str, model: str, calls: int = 20) -> tuple[float, float]:
    """Median and largest time of GET /health on a fresh connection while four streams run."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    load = context.Process(target=keep_streaming, args=(url, model, stop))
    load.start()
    time.sleep(3)
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        httpx.get(f"{url}/health", timeout=120)
        times.append(time.perf_counter() - began)
        time.sleep(0.1)
    stop.set()
    load.join(600)
    return float(np.median(times)), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path("bench-results/engine-affinity"))
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs at least two cores: one for the engine, one for the rest")
    args.folder.mkdir(parents=True, exist_ok=True)
    manifest = demo_manifest(Settings(demo="tiny"))
    env = {"MPO_MAX_NUM_SEQS": "8", "VLLM_CPU_OMP_THREADS_BIND": "0"}  # the worker on core 0
    server = MpoServer(manifest, args.folder, args.folder / "server.log", env)
    try:
        server.wait_ready()
        model = httpx.get(f"{server.url}/v1/mixture").json()["id"]
        engine = server.engine_process()
        completion(server.url, model)  # warm
        everywhere = os.sched_getaffinity(engine.pid)
        results: dict[str, list[tuple[float, ...]]] = {"free": [], "pinned": []}
        for _ in range(2):  # alternated, so that a drift of the machine shows in both
            for placement, cores in (("free", everywhere), ("pinned", {0})):
                os.sched_setaffinity(engine.pid, cores)
                one, eight = tokens_per_s(server.url, model, 1), tokens_per_s(server.url, model, 8)
                results[placement].append((one, eight, *health_under_streams(server.url, model)))
    finally:
        server.stop()
    free, pinned = (np.median(np.array(results[p]), axis=0) for p in ("free", "pinned"))
    print("| EngineCore | 1 completion, tokens/s | 8 at once, tokens/s | /health under 4 streams, median / max |")
    print("|---|---|---|---|")
    for name, row in (("free (vLLM)", free), ("pinned beside its worker", pinned)):
        print(f"| {name} | {row[0]:.0f} | {row[1]:.0f} | {1000 * row[2]:.0f} / {1000 * row[3]:.0f} ms |")
    print(
        f"| pinned / free | {pinned[0] / free[0]:.2f}x | {pinned[1] / free[1]:.2f}x "
        f"| {pinned[2] / free[2]:.2f}x / {pinned[3] / free[3]:.2f}x |"
    )


if __name__ == "__main__":
    main()
