"""Tiny real checkpoints for the tests: three randomly initialised Llamas sharing one BPE
tokenizer trained on the shipped corpus. Random weights are scaled up so next-token
distributions are peaked (greedy ties would make token-for-token comparisons flaky) and the
components disagree with each other, which is what a mixture test needs."""

import json
from pathlib import Path

import torch
import yaml
from transformers import LlamaForCausalLM

from demo.tiny.pretrain import read_corpus, tiny_llama_config, train_tokenizer

COMPONENTS = ("ref", "alpha", "beta")


def build_test_mixture(folder: Path, vocab_size: int = 512, max_len: int = 512) -> Path:
    """Write three checkpoints and a manifest into folder; returns the manifest path."""
    manifest = folder / "manifest.yaml"
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(read_corpus()[:2000], vocab_size)
    for seed, name in enumerate(COMPONENTS):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(tiny_llama_config(tokenizer, hidden=128, layers=2, max_len=max_len))
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() == 2:
                    parameter.normal_(0.0, 0.15)
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
    # The mixture's own prompt set (what a demo ships as its fit split): short openings of fortunes.
    openings = [" ".join(line.split()[:3]) for line in read_corpus()[2000:2100] if len(line.split()) >= 3]
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"prompt": text}) + "\n" for text in openings[:16]))
    manifest.write_text(
        yaml.safe_dump(
            {
                "name": "test-mix",
                "reference": {"name": "ref", "path": "ref"},
                "policies": [{"name": "alpha", "path": "alpha"}, {"name": "beta", "path": "beta"}],
                "weights": {"alpha": 0.5, "beta": 0.5},
                "dtype": "float32",
                "max_model_len": max_len,
                "kv_cache_gib": 0.5,  # ample for the tiny models; two test workers hold several servers
                "tool_call_parser": "hermes",
                "objectives": {"alpha": "sentiment", "beta": "concise"},
                "prompts": {"fit": str(folder.resolve() / "prompts.jsonl")},
            },
            sort_keys=False,
        )
    )
    return manifest


def with_policies(spec: dict, policies: list[dict]) -> dict:
    """A manifest spec with other policies, weighted equally, keeping the objectives of those
    that remain (objectives name policies)."""
    names = [p["name"] for p in policies]
    objectives = {p: scorer for p, scorer in spec.get("objectives", {}).items() if p in names}
    return spec | {"policies": policies, "weights": {n: 1 / len(names) for n in names}, "objectives": objectives}
