"""The benchmark command: the mixture against what a user would otherwise run.

    .venv/bin/python -m bench.run [--subjects tiny smollm2] [--out bench-results]

Subjects: the tiny demo (full checkpoints: merged sub-models only) and the SmolLM2 demo's
real manifest (reference + its two LoRA adapters), served both on the shared base and as
merged sub-models. For each subject, side by side in one run:
1.  decode throughput (batch 1, 8, 32) of vLLM serving the reference as a plain model, and of
    the mixture engine of each mode serving a one-policy request, the default mixture of the
    policies and fit traffic (every component), each against the plain model and against its
    ideal (single / components its requests run); medians of rounds with their spread;
2a. the per-step transformers loop (one KV cache per component, mixing log-probs each step);
2b. a Poisson serving workload: mpo-serve (continuous batching) vs the loop in static batches;
3.  mpo-serve's HTTP layer vs `vllm serve` on the same model folder, same streaming load;
4.  resident memory of mpo-serve (and of vLLM's server) against weights + KV budget, and, where
    the shared base applies, the engine's memory and start-up time for the reference alone
    and with one and two adapters in each mode (bench.footprint).
Prints tables and the goals met or missed; writes results.json and chart.png into --out.
"""

import argparse
import json
from pathlib import Path

from bench import throughput
from bench.footprint import measure_footprint
from bench.modes import modes_of
from bench.rates import figure
from bench.report import chart, goals, print_tables
from bench.serving import measure_serving
from bench.throughput import KINDS, components_run, in_subprocess, measure_decode
from mixer.manifest import load_manifest

BATCHES = [1, 8, 32]


def subject_manifest(name: str, data_dir: Path) -> Path:
    """The demo's own manifest (built first if absent: minutes, once)."""
    from server.cli.main import demo_manifest
    from server.settings import Settings

    if name not in ("tiny", "smollm2"):
        raise SystemExit(f"unknown subject {name!r}; choose tiny or smollm2")
    return demo_manifest(Settings(demo=name))


def ratios(numerator: list[float], denominator: list[float], scale: float = 1.0) -> dict:
    """Round-by-round ratios (both measured in the same round) as a figure."""
    return figure([scale * n / d for n, d in zip(numerator, denominator, strict=True)]).to_dict()


def decode_rows(decode: dict, modes: list[str], divisors: dict[str, int]) -> list[dict]:
    """Per batch: every runner's figure, each mode's kinds against the plain model and against
    their ideal, and the served default mixture (the default mode) against the loop."""
    rows = []
    for batch in BATCHES:
        row: dict = {"batch": batch, **{name: decode[name][batch] for name in decode}}
        single = decode["single"][batch]["rounds"]
        for mode in modes:
            for kind in KINDS:
                rounds = decode[f"{kind}_{mode}"][batch]["rounds"]
                row[f"{kind}_{mode}_vs_single"] = ratios(rounds, single)
                row[f"{kind}_{mode}_vs_ideal"] = ratios(rounds, single, divisors[kind])
        served = decode[f"two_policy_{modes[0]}"][batch]["rounds"]
        row["served_vs_loop"] = ratios(served, decode["loop_mixture"][batch]["rounds"])
        rows.append(row)
    return rows


def run_subject(name: str, manifest_path: Path, data_dir: Path) -> dict:
    manifest = load_manifest(manifest_path)
    components = manifest.components
    modes = modes_of(manifest_path)
    print(f"[{name}] {len(components)} components, modes {modes}: vLLM single, the mixtures, the loop", flush=True)
    decode = in_subprocess(measure_decode, str(manifest_path), BATCHES, modes, str(data_dir / f"decode-{name}"))
    divisors = components_run(manifest)
    rows = decode_rows(decode, modes, divisors)
    budget = sum(manifest.serving.weight_bytes.values()) + manifest.kv_cache_gib * 2**30
    footprint = None
    if "shared" in modes:
        print(f"[{name}] engine memory and start-up: the reference alone, + 1 and + 2 adapters", flush=True)
        footprint = measure_footprint(manifest_path, modes)
    print(f"[{name}] serving: Poisson workload and HTTP layer", flush=True)
    serving = measure_serving(manifest_path, data_dir, decode[f"two_policy_{modes[0]}"][32]["median"])
    return {
        "subject": name,
        "components": len(components),
        "modes": modes,
        "reference": manifest.reference.name,
        "weight_bytes": manifest.serving.weight_bytes,
        "components_run": divisors,
        "rows": rows,
        "footprint": footprint,
        "memory": {
            "server_rss_bytes": serving["mpo_rss_bytes"],
            "vllm_serve_rss_bytes": serving["vllm_rss_bytes"],
            "weights_plus_kv_bytes": budget,
            "ratio": serving["mpo_rss_bytes"] / budget,
        },
        "serving": serving,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", nargs="+", default=["tiny", "smollm2"])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "mpo-serve" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.data.mkdir(parents=True, exist_ok=True)
    throughput.ENGINE_LOG = args.out / "engine.log"
    throughput.ENGINE_LOG.write_text("")
    print(f"engine logs go to {throughput.ENGINE_LOG}", flush=True)
    results = [run_subject(name, subject_manifest(name, args.data), args.data) for name in args.subjects]
    print_tables(results)
    verdict = goals(results)
    print("\n".join(verdict))
    (args.out / "results.json").write_text(json.dumps({"subjects": results, "goals": verdict[1:]}, indent=2))
    chart(results, args.out / "chart.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'chart.png'}")


if __name__ == "__main__":
    main()
