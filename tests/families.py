"""Tiny real checkpoints of the decoder families users bring, each with two LoRA policies and
a reward soup of them, for the shared-base tests: Qwen2 (qkv bias, grouped KV heads, an
untied lm_head; its adapters change only the top layer, as the demo's change only the top
ten, so its bottom layer runs once for every component), Qwen3 (q/k norms, one KV head) and
Mistral (a sliding window shorter than the tests' long prompt). Llama is the tests' own
mixture (tests.adapters.build_lora_mixture). Weights are random and scaled like
tests.checkpoints', so greedy choices are clear."""

from pathlib import Path

import torch
import yaml
from transformers import (
    AutoTokenizer,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from tests.adapters import make_adapter

FAMILIES = {
    "qwen2": (
        Qwen2ForCausalLM,
        Qwen2Config,
        {"hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False},
        {"layers_to_transform": [1]},
    ),
    "qwen3": (
        Qwen3ForCausalLM,
        Qwen3Config,
        {"hidden_size": 128, "head_dim": 64, "num_attention_heads": 4, "num_key_value_heads": 1},
        {},
    ),
    "mistral": (
        MistralForCausalLM,
        MistralConfig,
        {"hidden_size": 128, "head_dim": 64, "num_attention_heads": 2, "num_key_value_heads": 1, "sliding_window": 64},
        {},
    ),
}
# Different projections, ranks and scalings per policy; std keeps each delta about as large as
# its base projection's output (tests.adapters says why).
POLICIES = {
    "alpha": {"seed": 21, "targets": ["q_proj", "k_proj", "o_proj", "gate_proj"], "r": 4, "lora_alpha": 8, "std": 0.15},
    "beta": {
        "seed": 22,
        "targets": ["v_proj", "up_proj", "down_proj", "q_proj"],
        "r": 6,
        "lora_alpha": 12,
        "use_rslora": True,
        "std": 0.1,
    },
}


def build_family_mixture(tests_folder: Path, family: str) -> Path:
    """A `family` reference (the tests' tokenizer), its policies and a soup; the manifest path."""
    folder = tests_folder / f"family-{family}"
    manifest = folder / "manifest.yaml"
    if manifest.is_file():
        return manifest
    tokenizer = AutoTokenizer.from_pretrained(tests_folder / "ref")
    model_class, config_class, shape, lora = FAMILIES[family]
    config = config_class(
        vocab_size=len(tokenizer),
        intermediate_size=384,
        num_hidden_layers=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
        **shape,
    )
    torch.manual_seed(3)
    model = model_class(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.15)
            elif name.endswith("bias"):
                parameter.normal_(0.0, 0.1)
            else:  # norms, the q/k norms too: around 1, not all ones
                parameter.normal_(1.0, 0.1)
    model.save_pretrained(folder / "ref")
    tokenizer.save_pretrained(folder / "ref")
    for name, spec in POLICIES.items():
        make_adapter(folder / "ref", folder / f"{name}-lora", **spec, **lora)
    spec = {
        "name": f"{family}-mix",
        "reference": {"name": "ref", "path": "ref"},
        "policies": [{"name": name, "adapter": f"{name}-lora"} for name in POLICIES],
        "baselines": [{"name": "soup", "soup": {"alpha": 0.3, "beta": 0.7}}],
        "weights": {"alpha": 0.5, "beta": 0.5},
        "dtype": "float32",
        "max_model_len": 512,
        "kv_cache_gib": 0.5,
    }
    manifest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return manifest
