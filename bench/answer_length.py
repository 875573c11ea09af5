"""How long an answer must be allowed for the answers to end: the share of a SmolLM2 demo model's
answers (held-out prompts, as an eval samples them) that end within each length. A length judge
on cut answers compares words per token, not length, so the manifest's answer length (what evals
and judged fits sample to) is chosen from this table.

    .venv/bin/python -m bench.answer_length [--models ref mixture concise] [--prompts 192]
        [--samples 1] [--longest 512] [--temperature 1]

'mixture' is the policies at equal weights; every model is asked through the mixture engine the
server runs (server.engine.offline_mixture_engine), each with its own weights.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from demo.smollm2.prompts import prompt_splits
from demo.smollm2.sampling import sample_with_vllm
from mixer.manifest import load_manifest
from mixer.needed import WEIGHTS_ARG, cache_salt, needed_components
from server.engine import offline_mixture_engine, shutdown_offline_engine
from server.settings import Settings

LENGTHS = (64, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ref"])
    parser.add_argument("--prompts", type=int, default=192)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--longest", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    manifest = load_manifest(Settings(demo="smollm2").demo_dir / "manifest.yaml")
    tokenizer = AutoTokenizer.from_pretrained(manifest.reference.path)
    names = [c.name for c in manifest.components]
    prompts = prompt_splits()["eval"][: args.prompts]
    print(f"{args.prompts} held-out prompts x {args.samples}, at most {args.longest} tokens, T {args.temperature}")
    print("| model | " + " | ".join(f"ends within {n}" for n in LENGTHS if n <= args.longest) + " | mean tokens |")
    print("|---|" + "---|" * (sum(n <= args.longest for n in LENGTHS) + 1))
    with tempfile.TemporaryDirectory() as work:
        engine = offline_mixture_engine(manifest, Path(work), seed=0)
        try:
            for model in args.models:
                weights = (
                    manifest.weight_vector({p: 1.0 for p in manifest.policy_names})
                    if model == "mixture"
                    else [float(n == model) for n in names]
                )
                salt = cache_salt(needed_components({WEIGHTS_ARG: weights}, len(names)), len(names))
                groups = sample_with_vllm(
                    engine, tokenizer, prompts, args.samples, args.longest, 7, args.temperature,
                    extra_args={WEIGHTS_ARG: weights}, cache_salt=salt,
                )  # fmt: skip
                answers = [a for group in groups for a in group]
                lengths = np.array([len(a.tokens) for a in answers])
                ended = np.array([a.ended for a in answers])
                shares = [f"{100 * float((ended & (lengths <= n)).mean()):.0f}%" for n in LENGTHS if n <= args.longest]
                print(f"| {model} | " + " | ".join(shares) + f" | {lengths.mean():.0f} |", flush=True)
        finally:
            shutdown_offline_engine(engine)


if __name__ == "__main__":
    main()
