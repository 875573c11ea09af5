"""Where vLLM's worker and EngineCore processes run on a small machine, side by side. Not a
test: it prints the ratios.

    .venv/bin/python -m bench.engine_affinity [--demos tiny smollm2]     # about 10 minutes

Why it matters: vLLM's shared-memory message queues busy-spin (`sched_yield`) for a second after
every read (vllm/distributed/device_communicators/shm_broadcast.py, `busy_loop_s=1`), so while
the engine decodes, the EngineCore process spins on a core its worker does not hold -- the core
the API server, the clients and the database need. Three placements, for each demo:

- every core: the worker's threads on all cores (VLLM_CPU_OMP_THREADS_BIND "0-N"), so EngineCore
  shares them whatever its affinity;
- worker on all cores but the last, EngineCore free: vLLM's own way with a core reserved;
- worker on all cores but the last, EngineCore pinned beside it (server.engine.pin_engine_core):
  the last core is the front end's alone.

The last two share a server (the bench moves EngineCore between rounds, alternated, so that a
drift of the machine shows in both). Measured: one completion's and eight concurrent ones'
tokens/s, and GET /health on a fresh connection while four streams run.
"""

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from launchers.processes import MpoServer
from server.cli.main import demo_manifest
from server.engine import pin_threads
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


def cpu_list(cores: set[int]) -> str:
    return ",".join(str(core) for core in sorted(cores))


def measure(url: str, model: str) -> tuple[float, ...]:
    return (tokens_per_s(url, model, 1), tokens_per_s(url, model, 8), *health_under_streams(url, model))


def run_server(manifest: Path, folder: Path, binding: str, placements: dict[str, set[int] | None]) -> dict:
    """One server with its worker on `binding`; per placement (EngineCore's cores, None: as the
    server left it), the median of two alternated rounds of `measure`."""
    env = {"MPO_MAX_NUM_SEQS": "8", "VLLM_CPU_OMP_THREADS_BIND": binding}
    server = MpoServer(manifest, folder, folder / "server.log", env)
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name in placements}
    try:
        server.wait_ready()
        model = httpx.get(f"{server.url}/v1/mixture").json()["id"]
        engine = server.engine_process()
        pinned = os.sched_getaffinity(engine.pid)
        completion(server.url, model)  # warm
        for _ in range(2):
            for name, cores in placements.items():
                pin_threads(engine, cores or pinned)
                results[name].append(measure(server.url, model))
    finally:
        server.stop()
    return {name: np.median(np.array(rows), axis=0) for name, rows in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path("bench-results/engine-affinity"))
    parser.add_argument("--demos", nargs="+", default=["tiny", "smollm2"], choices=["tiny", "smollm2"])
    args = parser.parse_args()
    every = os.sched_getaffinity(0)
    if len(every) < 2:
        raise SystemExit("needs at least two cores: one for the engine, one for the rest")
    last = max(every)
    but_last = every - {last}
    args.folder.mkdir(parents=True, exist_ok=True)
    print("| demo | worker / EngineCore | 1 completion, tokens/s | 8 at once, tokens/s | /health under 4 streams |")
    print("|---|---|---|---|---|")
    for demo in args.demos:
        manifest = demo_manifest(Settings(demo=demo))
        rows = run_server(manifest, args.folder, cpu_list(every), {f"cores {cpu_list(every)} / the same": None})
        rows |= run_server(
            manifest,
            args.folder,
            cpu_list(but_last),
            {f"cores {cpu_list(but_last)} / free": every, f"cores {cpu_list(but_last)} / pinned beside it": None},
        )
        for name, row in rows.items():
            print(f"| {demo} | {name} | {row[0]:.0f} | {row[1]:.0f} | {1000 * row[2]:.0f} / {1000 * row[3]:.0f} ms |")


if __name__ == "__main__":
    main()
