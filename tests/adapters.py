"""Tiny real LoRA adapters for the tests, made with peft on the tests' checkpoints."""

import json
import shutil
from pathlib import Path

import torch
import yaml
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedModel

from demo.tiny.pretrain import tiny_llama_config
from tests.checkpoints import build_test_mixture, with_policies

TARGETS = ["q_proj", "v_proj", "o_proj", "down_proj"]


def make_adapter(
    base: Path | PreTrainedModel,
    folder: Path,
    seed: int = 7,
    targets: list[str] = TARGETS,
    std: float = 0.3,
    **lora: object,
) -> Path:
    """A LoRA adapter with random, non-zero A and B (peft's init_lora_weights=False, entries of
    standard deviation `std`), scaled so that the adapted policy clearly differs from its base.
    `lora`: more LoraConfig fields (r, lora_alpha, use_rslora, rank_pattern, ...)."""
    model = base if isinstance(base, PreTrainedModel) else AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    config = {"r": 4, "lora_alpha": 8} | lora
    peft_model = get_peft_model(
        model, LoraConfig(target_modules=targets, init_lora_weights=False, lora_dropout=0.0, **config)
    )
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, std)
    shutil.rmtree(folder, ignore_errors=True)
    peft_model.save_pretrained(folder)
    return folder


def write_variant(base_manifest: Path, manifest: Path, name: str, policies: dict[str, dict]) -> Path:
    """`base_manifest` under another mixture name with other policies ({name: entry}, paths
    relative to the folder), weighted equally."""
    spec = yaml.safe_load(base_manifest.read_text())
    spec = with_policies(spec, [{"name": policy, **entry} for policy, entry in policies.items()]) | {"name": name}
    manifest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return manifest


def build_adapter_mixture(folder: Path) -> Path:
    """The tests' checkpoints plus a manifest mixing 'alpha' (a checkpoint) with 'gamma' (a
    LoRA adapter on the reference); returns the manifest path."""
    base_manifest = build_test_mixture(folder)
    manifest = folder / "adapter-mix.yaml"
    if not manifest.is_file():
        make_adapter(folder / "ref", folder / "gamma-lora")
        policies = {"alpha": {"path": "alpha"}, "gamma": {"adapter": "gamma-lora"}}
        write_variant(base_manifest, manifest, "adapter-mix", policies)
    return manifest


# The policies of the LoRA test mixture: different projections, ranks and scalings, each delta
# about as large as its base projection's output (much larger ones make fp32 rounding, on
# either side of a comparison, exceed the tests' 1e-4).
LORA_POLICIES = {
    "alpha": {"seed": 11, "targets": ["q_proj", "v_proj", "o_proj", "down_proj"], "r": 4, "lora_alpha": 8, "std": 0.2},
    "beta": {
        "seed": 12,
        "std": 0.1,
        "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "r": 8,
        "lora_alpha": 16,
        "use_rslora": True,
        "rank_pattern": {"gate_proj": 2},
        "alpha_pattern": {"down_proj": 4},
    },
}


def build_lora_mixture(folder: Path) -> Path:
    """The tests' mixture with its policies as LoRA adapters on the reference ('alpha' and
    'beta' under the same mixture name, test-mix, so the exactness tests run on either);
    returns the manifest path. Served on the shared base unless a test asks otherwise."""
    base_manifest = build_test_mixture(folder)
    manifest = folder / "lora-mix.yaml"
    if not manifest.is_file():
        for name, spec in LORA_POLICIES.items():
            make_adapter(folder / "ref", folder / f"{name}-lora", **spec)
        policies = {name: {"adapter": f"{name}-lora"} for name in LORA_POLICIES}
        write_variant(base_manifest, manifest, "test-mix", policies)
    return manifest


def build_lm_head_mixture(folder: Path) -> Path:
    """The LoRA mixture's 'alpha' beside 'head', a LoRA on q_proj and on the lm_head of the
    tests' Llama, whose embeddings are tied: the shared base cannot serve it, so it is served
    merged (with the embeddings untied); returns the manifest path."""
    lora_manifest = build_lora_mixture(folder)
    manifest = folder / "lm-head-mix.yaml"
    if not manifest.is_file():
        make_adapter(folder / "ref", folder / "head-lora", seed=13, targets=["q_proj", "lm_head"], std=0.2)
        policies = {"alpha": {"adapter": "alpha-lora"}, "head": {"adapter": "head-lora"}}
        write_variant(lora_manifest, manifest, "head-mix", policies)
    return manifest


def odd_base(test_manifest: Path, **shape) -> LlamaForCausalLM:
    """A Llama of another shape than the tests' reference (same tokenizer), for adapters that
    must not fit it."""
    tokenizer = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")
    return LlamaForCausalLM(tiny_llama_config(tokenizer, **{"hidden": 128, "layers": 2, "max_len": 512, **shape}))


def set_peft_type(adapter: Path, peft_type: str) -> None:
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["peft_type"] = peft_type
    config_file.write_text(json.dumps(config))
