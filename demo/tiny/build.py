"""Build (or reuse) the tiny demo mixture: reference + 'positive' + 'concise' policies, each a
4-layer Llama of 1.3 M parameters; fast to build and serve, for tests and benchmarks.

Deterministic for a given corpus and configuration; the result is cached in a folder with a
stamp of both, so the server starts at once when the demo already exists. The build fails
loudly if a policy does not beat the reference on its own objective.
"""

import argparse
import hashlib
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from transformers import LlamaForCausalLM

from demo.rewards import SCORER_SPECS, TWO_OBJECTIVES
from demo.tiny.align import evaluate, make_prompts, preference_pairs, sample, train_dpo
from demo.tiny.pretrain import CORPUS, pack, pretrain, read_corpus, tiny_llama_config, train_tokenizer

OBJECTIVES = TWO_OBJECTIVES  # a tiny model learns two objectives in CI time; the SmolLM2 demo aligns three

STAMP = "build.json"


@dataclass(frozen=True)
class DemoConfig:
    vocab_size: int = 2048
    hidden: int = 128
    layers: int = 4
    max_len: int = 256
    block: int = 128
    pretrain_steps: int = 300
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    dpo_prompts: int = 1024
    dpo_samples: int = 4
    max_new_tokens: int = 40
    dpo_beta: float = 0.1
    # Per objective: conciseness is learnt much faster (the end-of-text token alone carries
    # it), and at the positive policy's rate it collapses to empty answers.
    dpo_lr: tuple[tuple[str, float], ...] = (("positive", 2e-4), ("concise", 2e-5))
    dpo_epochs: int = 2
    dpo_batch: int = 32
    eval_prompts: int = 128
    eval_samples: int = 4
    seed: int = 1234


def _fingerprint(config: DemoConfig) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    digest.update(CORPUS.read_bytes())
    here = Path(__file__).parent
    for module in (
        here / "pretrain.py",
        here / "align.py",
        here / "build.py",
        here.parent / "dpo.py",
        here.parent / "rewards.py",
    ):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def is_built(folder: Path, config: DemoConfig = DemoConfig()) -> bool:
    stamp = folder / STAMP
    return stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == _fingerprint(config)


def build(folder: str | Path, config: DemoConfig = DemoConfig(), force: bool = False) -> Path:
    """Build the demo into folder (models, manifest.yaml, held-out prompts); returns the manifest path."""
    folder = Path(folder)
    if not force and is_built(folder, config):
        return folder / "manifest.yaml"
    start = time.time()
    torch.manual_seed(config.seed)
    staging = folder.with_name(folder.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    texts = read_corpus()
    random.Random(config.seed).shuffle(texts)
    held_out = max(config.eval_prompts * 2, len(texts) // 20)
    train_texts, test_texts = texts[:-held_out], texts[-held_out:]

    print(f"[1/4] tokenizer and reference pretraining on {len(train_texts)} texts", flush=True)
    tokenizer = train_tokenizer(train_texts, config.vocab_size)
    data = pack(tokenizer, train_texts, config.block)
    reference = LlamaForCausalLM(tiny_llama_config(tokenizer, config.hidden, config.layers, config.max_len))
    pretrain(reference, data, config.pretrain_steps, config.pretrain_batch, config.pretrain_lr)

    print(
        f"[2/4] sampling {config.dpo_samples} answers for {config.dpo_prompts} prompts from the reference", flush=True
    )
    train_prompts = make_prompts(train_texts, config.seed)[: config.dpo_prompts]
    samples = sample(reference, tokenizer, train_prompts, config.dpo_samples, config.max_new_tokens, config.seed)

    print("[3/4] DPO for each objective", flush=True)
    models = {"ref": reference}
    for name, judge in OBJECTIVES.items():
        pairs = preference_pairs(tokenizer, train_prompts, samples, judge)
        print(f"  {name}: {len(pairs)} preference pairs", flush=True)
        models[name] = train_dpo(
            reference,
            tokenizer,
            pairs,
            config.dpo_beta,
            dict(config.dpo_lr)[name],
            config.dpo_epochs,
            config.dpo_batch,
            config.seed,
            name,
        )

    print("[4/4] scoring every model on held-out prompts", flush=True)
    eval_prompts = make_prompts(test_texts, config.seed + 1)[: config.eval_prompts]
    scores = {
        name: evaluate(
            model, tokenizer, eval_prompts, OBJECTIVES, config.eval_samples, config.max_new_tokens, config.seed + 2
        )
        for name, model in models.items()
    }
    print(f"  {'model':<10}" + "".join(f"{o:>12}" for o in OBJECTIVES), flush=True)
    for name, row in scores.items():
        print(f"  {name:<10}" + "".join(f"{row[o]:>12.3f}" for o in OBJECTIVES), flush=True)
    failures = [n for n in OBJECTIVES if scores[n][n] <= scores["ref"][n]]
    if failures:
        raise RuntimeError(f"policies {failures} do not beat the reference on their own objective: {scores}")

    for name, model in models.items():
        model.save_pretrained(staging / name)
        tokenizer.save_pretrained(staging / name)
    manifest = {
        "name": "mpo-tiny",
        "reference": {"name": "ref", "path": "ref"},
        "policies": [{"name": n, "path": n} for n in OBJECTIVES],
        "weights": {n: 1.0 / len(OBJECTIVES) for n in OBJECTIVES},
        "dtype": "float32",
        "max_model_len": config.max_len,
        "kv_cache_gib": 1.0,
        "objectives": {n: SCORER_SPECS[n] for n in OBJECTIVES},
        "prompts": {"held_out": "prompts.jsonl"},
    }
    (staging / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with open(staging / "prompts.jsonl", "w") as out:
        for prompt in make_prompts(test_texts, config.seed + 3):
            out.write(json.dumps({"prompt": prompt}) + "\n")
    (staging / STAMP).write_text(
        json.dumps(
            {
                "fingerprint": _fingerprint(config),
                "config": asdict(config),
                "scores": scores,
                "seconds": time.time() - start,
            },
            indent=2,
        )
    )
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    print(f"demo built in {time.time() - start:.0f}s at {folder}", flush=True)
    return folder / "manifest.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    args = parser.parse_args()
    print(build(args.folder, force=args.force))


if __name__ == "__main__":
    main()
