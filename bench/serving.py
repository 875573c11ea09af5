"""Items 2b and 3 of the benchmark: the mixture served over HTTP.

2b: a Poisson workload against mpo-serve (continuous batching) and against the transformers
    loop serving the same requests in static batches.
3:  the same bounded streaming load against mpo-serve and against vLLM's own `vllm serve`
    on the same generated model folder, with the same engine arguments.
"""

import tempfile
from pathlib import Path

from bench.load import Request, closed_loop, open_loop, summarise
from bench.servers import HttpServer, MpoServer, vllm_server
from bench.throughput import corpus_token_runs, in_subprocess
from bench.workload import poisson_requests, serve_static_batches
from mixer.manifest import load_manifest, write_model_folder
from server.engine import configure_environment, engine_kwargs, model_folder
from server.settings import Settings

LOOP_BATCH = 32  # the loop's best fixed batch in item 2a
WORKLOAD_REQUESTS = 48
WORKLOAD_PROMPT_TOKENS = (8, 48)
WORKLOAD_OUTPUT_TOKENS = (16, 80)
HTTP_REQUESTS = 48
HTTP_CONCURRENCY = 16
HTTP_PROMPT_TOKENS = 16
HTTP_OUTPUT_TOKENS = 48


def _warm_up(server: HttpServer, model: str, tokenizer_dir: Path) -> None:
    """A few requests first, so one-time costs (first batch shapes, allocations) are not timed."""
    prompts = corpus_token_runs(tokenizer_dir, 4, HTTP_PROMPT_TOKENS)
    closed_loop(server.url, model, [Request(p, 8) for p in prompts], concurrency=4)


def http_requests(tokenizer_dir: Path) -> list[Request]:
    prompts = corpus_token_runs(tokenizer_dir, HTTP_REQUESTS, HTTP_PROMPT_TOKENS)
    return [Request(p, HTTP_OUTPUT_TOKENS) for p in prompts]


def measure_serving(manifest_path: Path, data_dir: Path, arrival_rate: float) -> dict:
    """Run 2b and 3 for one mixture. `arrival_rate` (requests/s) sets the Poisson workload."""
    manifest = load_manifest(manifest_path)
    settings = Settings(data_dir=data_dir)
    folder = write_model_folder(manifest, model_folder(manifest, settings))
    workload = poisson_requests(folder, WORKLOAD_REQUESTS, arrival_rate, WORKLOAD_PROMPT_TOKENS, WORKLOAD_OUTPUT_TOKENS)
    load = http_requests(folder)
    results: dict = {"arrival_rate": arrival_rate}
    with tempfile.TemporaryDirectory() as scratch:
        env = {"MPO_STORE_PATH": str(Path(scratch) / "weights.sqlite"), "MPO_ADMIN_TOKEN": None}
        print("  mpo-serve: Poisson workload, then the streaming load", flush=True)
        with MpoServer(manifest_path, data_dir, Path(scratch) / "mpo.log", env) as server:
            _warm_up(server, manifest.name, folder)
            results["workload_server"] = summarise(open_loop(server.url, manifest.name, workload))
            results["http_mpo"] = summarise(closed_loop(server.url, manifest.name, load, HTTP_CONCURRENCY))
            results["server_rss_bytes"] = server.rss_bytes()
        print("  vllm serve: the streaming load", flush=True)
        configure_environment(manifest.kv_cache_gib)
        with vllm_server(engine_kwargs(manifest, folder, settings), Path(scratch) / "vllm.log") as server:
            _warm_up(server, manifest.name, folder)
            results["http_vllm"] = summarise(closed_loop(server.url, manifest.name, load, HTTP_CONCURRENCY))
            results["vllm_rss_bytes"] = server.rss_bytes()
    print(f"  transformers loop: the Poisson workload in static batches of {LOOP_BATCH}", flush=True)
    paths = [str(c.path) for c in manifest.components]
    outcomes = in_subprocess(serve_static_batches, paths, manifest.weight_vector(), workload, LOOP_BATCH)
    results["workload_loop"] = summarise(outcomes)
    return results
