"""Where a decode step's time goes in the engine, part by part, for the plain model and the
mixture in each serving mode (py-spy, sampling; no change to the engine).

    .venv/bin/python -m bench.profile_engine [--subject smollm2] [--batch 8] [--seconds 12] [--modes shared]

For vLLM serving the reference as a plain model, and for the mixture engine of each mode
(bench.modes) serving each kind of request (bench.throughput: one policy, the default
mixture, fit traffic), keeps the engine decoding greedy batches of `--batch` prompts while
py-spy samples the engine's worker process for `--seconds`, then prints each part's share of
the samples and its milliseconds per decode step (share x the step time measured while
sampling): the base model's linear layers (their GEMMs, the shared base's up GEMMs inside),
the shared base's LoRA down GEMMs, the lm_head with the log-softmax and mixing, attention
(with the KV cache writes), norms, rotary embeddings and activations, the sampler, the worker
waiting for the scheduler, and the rest (Python between the ops, input preparation). This is
what docs/benchmarks.md points to where a ratio misses its goal. Writes the raw (collapsed) stacks into --out.
"""

import argparse
import collections
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from bench.modes import modes_of, served_in
from bench.throughput import (
    KINDS,
    MixtureRequests,
    in_subprocess,
    kind_weights,
    plain_generate,
    prompts_for,
    vllm_engine,
)
from mixer.manifest import load_manifest

# Each part of a step and the frames that say a sample is in it, tried in this order: the
# first part with a frame in the sample's stack takes it (a delta runs inside a linear layer,
# the lm_head's GEMM inside compute_logits).
PARTS = {
    "LoRA down GEMMs (the up is in the base's)": ("LowRankDelta.add_to", "StackedDeltas.hidden"),
    "lm_head, log-softmax, mixing": ("compute_logits",),
    "base linear layers": ("UnquantizedLinearMethod.apply",),
    "attention and KV writes": ("CPUAttentionBackendImpl", "unified_attention", "unified_kv_cache_update"),
    "norms, rotary, activations": ("RMSNorm", "RotaryEmbedding", "SiluAndMul"),
    "sampler": ("Sampler.forward",),
    "waiting for the scheduler": ("MessageQueue.acquire_read", "MessageQueue.dequeue"),
}
REST = "rest (Python between ops, inputs)"


def part_of(stack: str) -> str:
    frames = [frame.split(" (")[0] for frame in stack.split(";")]
    for part, markers in PARTS.items():
        if any(marker in frame for frame in frames for marker in markers):
            return part
    return REST


def read_parts(raw: Path) -> dict[str, int]:
    """Samples per part from py-spy's collapsed stacks ('frame;frame;... count' per line)."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[part_of(stack)] += int(count)
    return dict(counts)


def worker_pid() -> int:
    """The engine's worker process (it runs the model), a descendant of this one."""
    import psutil

    descendants = psutil.Process().children(recursive=True)
    workers = [p for p in descendants if "Worker" in p.name() or "Worker" in " ".join(p.cmdline())]
    return (workers or descendants)[-1].pid


def sample(generate, batch: int, seconds: int, out: Path) -> dict:
    """Decode in a loop while py-spy records the worker; the step time measured meanwhile."""
    py_spy = Path(sys.executable).with_name("py-spy")  # installed beside this Python (bench extra)
    command = [str(py_spy) if py_spy.exists() else "py-spy", "record", "--pid", str(worker_pid())]
    command += ["--duration", str(seconds), "--format", "raw", "--output", str(out), "--nonblocking"]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tokens, start = 0, time.perf_counter()
    while recorder.poll() is None:
        generate(32)
        tokens += 32
    elapsed = time.perf_counter() - start
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"py-spy failed (exit {recorder.returncode}); it needs ptrace (run as root or with CAP_SYS_PTRACE)"
        )
    return {"step_ms": 1000 * elapsed / tokens, "tokens_per_s": batch * tokens / elapsed, "samples": read_parts(out)}


def profile_engine(manifest_path: str, mode: str | None, batch: int, seconds: int, out_dir: str) -> dict:
    """Every kind of request on one engine: the plain reference (mode None) or a mode's mixture."""
    manifest = load_manifest(manifest_path)
    prompts = prompts_for(Path(manifest.reference.path), batch)
    out = Path(out_dir)
    if mode is None:
        engine = vllm_engine(manifest, None, batch)
        generators = {"single": partial(plain_generate, engine, prompts)}
    else:
        served, settings = served_in(Path(manifest_path), out, mode)
        engine = vllm_engine(served, out / f"model-{mode}", batch, **settings)
        weights = kind_weights(manifest)
        generators = {
            f"{kind}_{mode}": partial(MixtureRequests(engine, weights[kind], record=kind == "all"), prompts)
            for kind in KINDS
        }
    results = {}
    for name, generate in generators.items():
        generate(4)  # warm-up
        results[name] = sample(generate, batch, seconds, out / f"profile-{name}-{batch}.txt")
    engine.llm_engine.engine_core.shutdown()
    return results


def print_parts(results: dict, batch: int) -> None:
    names = list(results)
    print(f"\nms per decode step at batch {batch}, by part (share of the worker's samples x step time)")
    print(f"{'part':<34}" + "".join(f"{name:>18}" for name in names))
    for part in [*PARTS, REST]:
        cells = []
        for name in names:
            samples = results[name]["samples"]
            share = samples.get(part, 0) / max(1, sum(samples.values()))
            cells.append(f"{share * results[name]['step_ms']:>11.1f} ({share:>3.0%})")
        print(f"{part:<34}" + "".join(cells))
    print(f"{'step (measured while sampling)':<34}" + "".join(f"{results[n]['step_ms']:>15.1f} ms" for n in names))
    print(f"{'tokens/s':<34}" + "".join(f"{results[n]['tokens_per_s']:>18.1f}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="smollm2", choices=["tiny", "smollm2"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--modes", nargs="+", default=None, help="default: every mode the manifest can be served in")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    from bench import throughput
    from bench.run import subject_manifest

    args.out.mkdir(parents=True, exist_ok=True)
    throughput.ENGINE_LOG = args.out / "engine.log"
    manifest_path = subject_manifest(args.subject, args.out)
    results = {}
    for mode in [None, *(args.modes or modes_of(manifest_path))]:
        print(f"profiling {mode or 'the plain model'} ({args.seconds} s per kind of request)", flush=True)
        results |= in_subprocess(profile_engine, str(manifest_path), mode, args.batch, args.seconds, str(args.out))
    print_parts(results, args.batch)
    print(f"\nraw stacks (flame graphs): {args.out}/profile-*-{args.batch}.txt")


if __name__ == "__main__":
    main()
