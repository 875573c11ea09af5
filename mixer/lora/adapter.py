"""A PEFT LoRA adapter read from its folder, without loading any model.

Both ways of serving an adapter start here. Merging (mixer.lora.merge) needs only the checks
that the folder holds a LoRA adapter. Serving it on the shared base (mixer.lora.model) needs
what the adapter changes: for each adapted projection of each decoder layer, its factors A
(r, in) and B (out, r) and peft's scaling (lora_alpha / r, or lora_alpha / sqrt(r) with
rsLoRA; per module where rank_pattern / alpha_pattern say so), and the things the shared path
cannot reproduce exactly (DoRA, modules_to_save, LoRA on embeddings or lm_head, ...), each of
which sends the mixture to the merged path (mixer.lora.mode).

Pure torch and safetensors: no vLLM, no model, so the front end reads adapters in
milliseconds and the engine's workers can use the same code.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
SUPPORTED_TYPES = ("LORA",)

# The decoder projections the shared path adapts, by the block they live in.
PROJECTIONS = {
    "q_proj": "self_attn",
    "k_proj": "self_attn",
    "v_proj": "self_attn",
    "o_proj": "self_attn",
    "gate_proj": "mlp",
    "up_proj": "mlp",
    "down_proj": "mlp",
}
# A LoRA factor as peft saves it: base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight
FACTOR_KEY = re.compile(
    r"^base_model\.model\.(?P<module>model\.layers\.(?P<layer>\d+)\.(?P<block>\w+)\.(?P<proj>\w+))"
    r"\.lora_(?P<factor>[AB])\.weight$"
)
# Config fields that change what an adapter computes beyond x A^T B^T * scaling, with what they are.
CHANGES_THE_FORWARD = {
    "use_dora": "DoRA (weight-decomposed LoRA)",
    "modules_to_save": "modules_to_save (fully trained copies of base modules)",
    "trainable_token_indices": "trainable token embeddings",
    "lora_bias": "a bias on lora_B",
    "layer_replication": "layer replication",
    "target_parameters": "LoRA on parameters (target_parameters)",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens)",
    "arrow_config": "Arrow routing",
    "fan_in_fan_out": "fan_in_fan_out (Conv1D layers)",
    "use_qalora": "QALoRA",
    "megatron_config": "Megatron layers",
}


class AdapterError(ValueError):
    """An adapter that cannot be served; the message names the component and the problem."""


def read_adapter_config(name: str, folder: Path) -> dict:
    """The adapter's PEFT config, after the checks that need no model: the folder exists,
    holds a PEFT adapter (config and weights) of a type that can be served."""
    if not folder.is_dir():
        raise AdapterError(f"component {name!r}: adapter folder {str(folder)!r} does not exist")
    config_file = folder / ADAPTER_CONFIG
    if not config_file.is_file():
        raise AdapterError(
            f"component {name!r}: {str(folder)!r} is not a PEFT adapter folder (no {ADAPTER_CONFIG}); "
            "for a full checkpoint use 'path' instead of 'adapter'"
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise AdapterError(f"component {name!r}: {str(config_file)!r} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or "peft_type" not in config:
        raise AdapterError(f"component {name!r}: {str(config_file)!r} has no 'peft_type'; not a PEFT adapter config")
    if config["peft_type"] not in SUPPORTED_TYPES:
        raise AdapterError(
            f"component {name!r}: adapter type {config['peft_type']!r} is not supported; "
            f"supported: {list(SUPPORTED_TYPES)} (merged into the reference with peft)"
        )
    if weights_file(folder) is None:
        raise AdapterError(
            f"component {name!r}: {str(folder)!r} holds no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})"
        )
    return config


def weights_file(folder: Path) -> Path | None:
    return next((folder / f for f in ADAPTER_WEIGHTS if (folder / f).is_file()), None)


def read_tensors(folder: Path) -> dict:
    """Every tensor of the adapter's weights file, on the CPU, in its stored dtype."""
    path = weights_file(folder)
    if path is None:
        raise AdapterError(f"{str(folder)!r} holds no adapter weights")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the adapter's tensors (a safetensors file is read from its header only)."""
    path = weights_file(folder)
    if path is not None and path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    return {key: tuple(value.shape) for key, value in read_tensors(folder).items()}


@dataclass(frozen=True)
class Projection:
    """One adapted projection of the reference: its module key (peft's, e.g.
    'model.layers.3.self_attn.q_proj'), layer index, projection name and scaling."""

    module: str
    layer: int
    name: str
    scaling: float


def scaling(config: dict, module: str, rank: int) -> float:
    """peft's scaling of one module: lora_alpha / r (or / sqrt(r) with rsLoRA), where r and
    lora_alpha may be overridden per module by rank_pattern and alpha_pattern."""
    from peft.utils.other import get_pattern_key  # peft's own matching of the patterns

    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    r = rank_pattern.get(get_pattern_key(rank_pattern.keys(), module), config.get("r", 8))
    alpha = alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), module), config.get("lora_alpha", 8))
    if r != rank:
        raise AdapterError(f"{module}: the config says rank {r}, the saved factors have rank {rank}")
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def unshareable(config: dict, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """Why the shared path cannot serve this adapter exactly, or None if it can: a config
    field that changes the forward, or saved tensors other than the projections' factors."""
    for field, what in CHANGES_THE_FORWARD.items():
        if config.get(field):
            return f"it uses {what}"
    if config.get("bias", "none") != "none":
        return f"it trains the base layers' biases (bias={config['bias']!r})"
    for key in shapes:
        match = FACTOR_KEY.match(key)
        if match is None or PROJECTIONS.get(match["proj"]) != match["block"]:
            module = re.sub(r"^base_model\.model\.|(\.base_layer|\.lora_\w+)?(\.weight)?$", "", key)
            return f"it changes {module!r} (the shared path adapts only the decoder projections {sorted(PROJECTIONS)})"
    targets = config.get("target_modules")
    if isinstance(targets, list):
        other = sorted(set(targets) - set(PROJECTIONS))
        if other:
            return f"it targets {other} (the shared path adapts only the decoder projections {sorted(PROJECTIONS)})"
    return None


def projections(config: dict, shapes: dict[str, tuple[int, ...]]) -> list[Projection]:
    """The adapted projections of an adapter that unshareable() accepts, with their scalings,
    after checking that each has both factors and that their ranks agree."""
    factors: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = FACTOR_KEY.match(key)
        assert match is not None, f"{key} passed unshareable()"
        factors.setdefault(match["module"], {})[match["factor"]] = shape
    found = []
    for module, pair in sorted(factors.items(), key=lambda item: _layer_and_name(item[0])):
        if set(pair) != {"A", "B"}:
            missing = ({"A", "B"} - set(pair)).pop()
            raise AdapterError(f"{module}: lora_{missing} is missing from the adapter")
        a, b = pair["A"], pair["B"]
        if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            raise AdapterError(f"{module}: lora_A {a} and lora_B {b} are not the factors of one low-rank product")
        layer, name = _layer_and_name(module)
        found.append(Projection(module, layer, name, scaling(config, module, a[0])))
    return found


def _layer_and_name(module: str) -> tuple[int, str]:
    parts = module.split(".")
    return int(parts[2]), parts[-1]


def expected_shapes(reference_config: dict) -> dict[str, tuple[int, int]]:
    """(out, in) of each projection of a decoder layer of the reference (a config.json)."""
    hidden = reference_config["hidden_size"]
    heads = reference_config["num_attention_heads"]
    kv_heads = reference_config.get("num_key_value_heads") or heads
    head_dim = reference_config.get("head_dim") or hidden // heads
    inner = reference_config["intermediate_size"]
    return {
        "q_proj": (heads * head_dim, hidden),
        "k_proj": (kv_heads * head_dim, hidden),
        "v_proj": (kv_heads * head_dim, hidden),
        "o_proj": (hidden, heads * head_dim),
        "gate_proj": (inner, hidden),
        "up_proj": (inner, hidden),
        "down_proj": (hidden, inner),
    }


def fit_problems(reference_config: dict, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Where an adapter's factors do not fit the reference: a layer it lacks, or an input or
    output size that differs (the rank is the adapter's own)."""
    layers = reference_config["num_hidden_layers"]
    sizes = expected_shapes(reference_config)
    problems = []
    for key, shape in sorted(shapes.items()):
        match = FACTOR_KEY.match(key)
        if match is None:
            continue
        if int(match["layer"]) >= layers:
            problems.append(f"{key} is not in the reference (it has {layers} layers)")
            continue
        out, inp = sizes[match["proj"]]
        dim, size = (1, inp) if match["factor"] == "A" else (0, out)
        if len(shape) != 2 or shape[dim] != size:
            needed = f"(r, {size})" if dim else f"({size}, r)"
            problems.append(f"{key} has shape {shape}, the reference needs {needed}")
    return problems
