"""The benchmark command: the mixture against what a user would otherwise run.

    .venv/bin/python -m bench.run [--subjects demo smollm2] [--out bench-results]

For each subject, side by side in one run: decode throughput of vLLM serving one policy and
the mixture of all components (batch 1, 8, 32) with the ratio to the ideal (single-model
throughput / number of components), the per-step transformers loop (one KV cache per
component, mixing log-probs each step), and resident memory against weights + KV budget.
Prints a table; writes results.json and chart.png into --out.
"""

import argparse
import json
from pathlib import Path

from bench.throughput import in_subprocess, measure_loop, measure_vllm
from mixer.manifest import load_manifest

BATCHES = [1, 8, 32]


def subject_manifest(name: str, data_dir: Path) -> Path:
    if name == "demo":
        from server.cli import demo_manifest
        from server.settings import Settings

        return demo_manifest(Settings())
    if name == "smollm2":
        from bench.smollm2 import convert, self_mixture_manifest

        folder = convert(data_dir / "smollm2-135m-instruct")
        return self_mixture_manifest(folder, data_dir / "smollm2-self-mix.yaml")
    raise SystemExit(f"unknown subject {name!r}; choose demo or smollm2")


def weights_bytes(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in p.glob("*.safetensors"))


def run_subject(name: str, manifest_path: Path, new_tokens: int) -> dict:
    manifest = load_manifest(manifest_path)
    components = manifest.components
    policy = str(components[1].path)
    print(f"[{name}] {len(components)} components; vLLM single policy", flush=True)
    single = in_subprocess(measure_vllm, str(manifest_path), True, BATCHES, new_tokens)
    print(f"[{name}] vLLM mixture", flush=True)
    mixture = in_subprocess(measure_vllm, str(manifest_path), False, BATCHES, new_tokens)
    print(f"[{name}] transformers loop, single and mixture", flush=True)
    loop_single = in_subprocess(measure_loop, [policy], [1.0], BATCHES, new_tokens)
    loop_mixture = in_subprocess(
        measure_loop, [str(c.path) for c in components], manifest.weight_vector(), BATCHES, new_tokens
    )
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
    return {
        "subject": name,
        "components": len(components),
        "new_tokens": new_tokens,
        "rows": rows,
        "memory": {
            "mixture_rss_bytes": mixture["rss_bytes"],
            "weights_plus_kv_bytes": budget,
            "ratio": mixture["rss_bytes"] / budget,
        },
    }


def print_table(results: list[dict]) -> None:
    columns = [("subject", "<9"), ("batch", ">6"), ("single", ">9"), ("mixture", ">9"), ("vs ideal", ">10")]
    columns += [("loop 1", ">9"), ("loop mix", ">10"), ("vs loop", ">9")]
    header = "".join(f"{name:{align}}" for name, align in columns)
    print("\ndecode tokens/s (2 CPU cores)\n" + header)
    for result in results:
        for row in result["rows"]:
            print(
                f"{result['subject']:<9}{row['batch']:>6}{row['vllm_single']:>9.1f}{row['vllm_mixture']:>9.1f}"
                f"{row['mixture_vs_ideal']:>10.2f}{row['loop_single']:>9.1f}{row['loop_mixture']:>10.1f}"
                f"{row['served_mixture_vs_loop']:>9.2f}"
            )
    print("\nresident memory of the mixture engine vs weights + KV budget")
    for result in results:
        memory = result["memory"]
        print(
            f"{result['subject']:<9} {memory['mixture_rss_bytes'] / 2**30:.2f} GiB vs "
            f"{memory['weights_plus_kv_bytes'] / 2**30:.2f} GiB: {memory['ratio']:.2f}"
        )


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for axis, result in zip(axes[0], results, strict=True):
        batches = [str(r["batch"]) for r in result["rows"]]
        series = ["vllm_single", "vllm_mixture", "loop_single", "loop_mixture"]
        width = 0.2
        for i, key in enumerate(series):
            axis.bar(
                [x + (i - 1.5) * width for x in range(len(batches))], [r[key] for r in result["rows"]], width, label=key
            )
        axis.set_xticks(range(len(batches)), batches)
        axis.set_xlabel("batch")
        axis.set_ylabel("decode tokens/s")
        axis.set_title(f"{result['subject']} ({result['components']} components)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", nargs="+", default=["demo", "smollm2"])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "mpo-serve" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.data.mkdir(parents=True, exist_ok=True)
    results = [run_subject(name, subject_manifest(name, args.data), args.new_tokens) for name in args.subjects]
    print_table(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    chart(results, args.out / "chart.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'chart.png'}")


if __name__ == "__main__":
    main()
