"""The benchmark command: the mixture against what a user would otherwise run.

    .venv/bin/python -m bench.run [--subjects tiny smollm2] [--out bench-results]

For each subject, side by side in one run:
1.  decode throughput of vLLM serving one policy and the mixture of all components (batch 1,
    8, 32), with the ratio to the ideal (single-model throughput / number of components);
2a. the per-step transformers loop (one KV cache per component, mixing log-probs each step);
2b. a Poisson serving workload: mpo-serve (continuous batching) vs the loop in static batches;
3.  mpo-serve's HTTP layer vs `vllm serve` on the same model folder, same streaming load;
4.  resident memory of mpo-serve (and of vLLM's server) against weights + KV budget.
Prints tables and the goals met or missed; writes results.json and chart.png into --out.
"""

import argparse
import json
from pathlib import Path

from bench.report import chart, goals, print_tables
from bench.serving import measure_serving
from bench.throughput import in_subprocess, measure_decode
from mixer.manifest import load_manifest

BATCHES = [1, 8, 32]


def subject_manifest(name: str, data_dir: Path) -> Path:
    if name == "tiny":
        from server.cli import demo_manifest
        from server.settings import Settings

        return demo_manifest(Settings(demo="tiny"))
    if name == "smollm2":
        from bench.smollm2 import convert, self_mixture_manifest

        folder = convert(data_dir / "smollm2-135m-instruct")
        return self_mixture_manifest(folder, data_dir / "smollm2-self-mix.yaml")
    raise SystemExit(f"unknown subject {name!r}; choose tiny or smollm2")


def weights_bytes(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in p.glob("*.safetensors"))


def run_subject(name: str, manifest_path: Path, data_dir: Path, new_tokens: int) -> dict:
    manifest = load_manifest(manifest_path)
    components = manifest.components
    print(f"[{name}] {len(components)} components; vLLM single and mixture, transformers loop", flush=True)
    decode = in_subprocess(measure_decode, str(manifest_path), BATCHES, new_tokens)
    single, mixture = decode["vllm_single"], decode["vllm_mixture"]
    loop_single, loop_mixture = decode["loop_single"], decode["loop_mixture"]
    rows = []
    for batch in BATCHES:
        ideal = single[batch] / len(components)
        rows.append(
            {
                "batch": batch,
                "vllm_single": single[batch],
                "vllm_mixture": mixture[batch],
                "mixture_vs_ideal": mixture[batch] / ideal,
                "loop_single": loop_single[batch],
                "loop_mixture": loop_mixture[batch],
                "served_mixture_vs_loop": mixture[batch] / loop_mixture[batch],
            }
        )
    budget = weights_bytes([c.path for c in components]) + manifest.kv_cache_gib * 2**30
    print(f"[{name}] serving: Poisson workload and HTTP layer", flush=True)
    serving = measure_serving(manifest_path, data_dir, mixture[32])
    return {
        "subject": name,
        "components": len(components),
        "new_tokens": new_tokens,
        "rows": rows,
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
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "mpo-serve" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.data.mkdir(parents=True, exist_ok=True)
    results = [
        run_subject(name, subject_manifest(name, args.data), args.data, args.new_tokens) for name in args.subjects
    ]
    print_tables(results)
    verdict = goals(results)
    print("\n".join(verdict))
    (args.out / "results.json").write_text(json.dumps({"subjects": results, "goals": verdict[1:]}, indent=2))
    chart(results, args.out / "chart.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'chart.png'}")


if __name__ == "__main__":
    main()
