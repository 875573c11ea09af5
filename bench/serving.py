"""Items 2b and 3 of the benchmark: the mixture served over HTTP.

2b: a Poisson workload against mpo-serve (continuous batching) and against the transformers
    loop serving the same requests in static batches.
3:  the same bounded streaming load against mpo-serve and against vLLM's own `vllm serve`
    on the same generated model folder, with the same engine arguments and the same work:
    mpo-serve sends the default weights with every request (so a step runs the policies,
    not the reference); vLLM's server gets the same vector through `vllm_xargs`.
"""

import tempfile
from pathlib import Path

from bench.load import Request, closed_loop, open_loop, summarise
from bench.modes import loop_checkpoints
from bench.rates import figure
from bench.servers import HttpServer, MpoServer, vllm_server
from bench.throughput import corpus_token_runs, in_subprocess
from bench.workload import poisson_requests, serve_static_batches
from mixer.manifest import load_manifest
from mixer.needed import WEIGHTS_ARG
from server.engine import configure_environment, engine_kwargs, model_folder
from server.settings import Settings

LOOP_BATCH = 32  # the loop's best fixed batch in item 2a
WORKLOAD_REQUESTS = 48
WORKLOAD_PROMPT_TOKENS = (8, 48)
WORKLOAD_OUTPUT_TOKENS = (16, 80)
HTTP_CONCURRENCY = 16
HTTP_PROMPT_TOKENS = 16
HTTP_OUTPUT_TOKENS = 48
TTFT_PROBES = 16
HTTP_ORDER = ["mpo", "vllm", "vllm", "mpo"] * 3  # ABBA rounds: a machine drifting slower hurts neither


def _warm_up(server: HttpServer, model: str, tokenizer_dir: Path, extra: dict | None) -> None:
    """A few requests first, so one-time costs (first batch shapes, allocations) are not timed."""
    prompts = corpus_token_runs(tokenizer_dir, 4, HTTP_PROMPT_TOKENS)
    closed_loop(server.url, model, [Request(p, 8) for p in prompts], concurrency=4, extra=extra)


def pair_ratios(rounds: dict[str, list[dict]]) -> list[float]:
    """mpo-serve's tokens/s over vLLM's server's, one ratio per ABBA block (rounds 4i..4i+3)."""
    mpo, vllm = rounds["mpo"], rounds["vllm"]
    return [
        (mpo[i]["tokens_per_s"] + mpo[i + 1]["tokens_per_s"]) / (vllm[i]["tokens_per_s"] + vllm[i + 1]["tokens_per_s"])
        for i in range(0, len(mpo) - 1, 2)
    ]


def http_requests(tokenizer_dir: Path, decode_rate: float) -> list[Request]:
    """About 15 s of work per round at the mixture's batch-32 decode rate, 32 to 256 requests."""
    count = min(256, max(32, round(15 * decode_rate / HTTP_OUTPUT_TOKENS)))
    prompts = corpus_token_runs(tokenizer_dir, count, HTTP_PROMPT_TOKENS)
    return [Request(p, HTTP_OUTPUT_TOKENS) for p in prompts]


def measure_serving(manifest_path: Path, data_dir: Path, decode_rate: float) -> dict:
    """Run 2b and 3 for one mixture whose batch-32 decode rate (item 1) is `decode_rate`.

    Requests of the Poisson workload arrive at about the rate the server sustains at batch 32.
    Both HTTP servers run side by side (an idle vLLM engine sleeps) and take turns."""
    manifest = load_manifest(manifest_path)
    settings = Settings(data_dir=data_dir)
    folder = model_folder(manifest, settings)  # writes it
    rate = decode_rate / (sum(WORKLOAD_OUTPUT_TOKENS) / 2)
    workload = poisson_requests(folder, WORKLOAD_REQUESTS, rate, WORKLOAD_PROMPT_TOKENS, WORKLOAD_OUTPUT_TOKENS)
    load = http_requests(folder, decode_rate)
    probe = [Request(r.prompt, 1) for r in load[:TTFT_PROBES]]
    results: dict = {"arrival_rate": rate, "http_requests_per_round": len(load)}
    configure_environment(manifest.kv_cache_gib)  # vLLM's server gets what mpo-serve sets itself
    with tempfile.TemporaryDirectory() as scratch:
        env = {"MPO_STORE_PATH": str(Path(scratch) / "weights.sqlite"), "MPO_ADMIN_TOKEN": None}
        print("  starting mpo-serve and vLLM's server on the same model folder", flush=True)
        with (
            MpoServer(manifest_path, data_dir, Path(scratch) / "mpo.log", env) as mpo,
            vllm_server(engine_kwargs(manifest, folder, settings), Path(scratch) / "vllm.log") as vllm,
        ):
            servers = {"mpo": mpo, "vllm": vllm}
            extras = {"mpo": None, "vllm": {"vllm_xargs": {WEIGHTS_ARG: manifest.weight_vector()}}}
            for name, server in servers.items():
                _warm_up(server, manifest.name, folder, extras[name])
            print(f"  Poisson workload at {rate:.2f} requests/s against mpo-serve", flush=True)
            results["workload_server"] = summarise(open_loop(mpo.url, manifest.name, workload))
            print(f"  streaming load, {len(load)} requests per round, rounds {HTTP_ORDER}", flush=True)
            rounds: dict[str, list] = {name: [] for name in servers}
            for name in HTTP_ORDER:
                run = closed_loop(servers[name].url, manifest.name, load, HTTP_CONCURRENCY, extras[name])
                rounds[name].append(run)
            # The HTTP layer's own latency: one request at a time, prefill and one token.
            probes: dict[str, list] = {name: [] for name in servers}
            for name in HTTP_ORDER:
                probes[name].append(closed_loop(servers[name].url, manifest.name, probe, 1, extras[name]))
            per_round = {name: [summarise(run) for run in runs] for name, runs in rounds.items()}
            for name, server in servers.items():
                results[f"http_{name}"] = summarise(*rounds[name])
                results[f"http_{name}"]["tokens_per_s_rounds"] = figure(
                    [r["tokens_per_s"] for r in per_round[name]]
                ).to_dict()
                results[f"http_{name}"]["unloaded_ttft_ms"] = summarise(*probes[name])["ttft_ms"]
                results[f"{name}_rss_bytes"] = server.rss_bytes()
            results["http_ratio"] = figure(pair_ratios(per_round)).to_dict()
    print(f"  transformers loop: the Poisson workload in static batches of {LOOP_BATCH}", flush=True)
    # The loop a researcher writes loads the policies it mixes (adapters merged), not the reference.
    checkpoints = loop_checkpoints(manifest, data_dir / "merged")
    paths = [str(checkpoints[manifest.components.index(p)]) for p in manifest.policies]
    weights = [manifest.weights[p.name] for p in manifest.policies]
    outcomes = in_subprocess(serve_static_batches, paths, weights, workload, LOOP_BATCH)
    results["workload_loop"] = summarise(outcomes)
    return results
