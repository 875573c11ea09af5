"""How a manifest's components are served: on one shared base, or as merged sub-models.

Shared (mixer.lora.model) holds the reference's weights once and each adapter's factors, and
runs every base layer once per step over all the step's components: K adapters cost about one
model's weights and, where decoding reads weights, about one model's time. It serves exactly
what peft computes only when the reference is a plain checkpoint of a decoder family whose
vLLM layers it knows and every other component is a LoRA adapter on it (or a reward soup of
such adapters) that adapts nothing but the decoder projections. Anything else (a policy that
is a full checkpoint, DoRA, LoRA on embeddings or lm_head, modules_to_save, another
architecture) is served merged (mixer.lora.merge, mixer.model), which is exact for every
case at the cost of one full sub-model per component.

`lora_mode` in the manifest chooses: `auto` (shared where it is exact, merged otherwise, with
the reason in one log line), `shared` (an error says why it cannot be) or `merged`.
No vLLM and no model: the checks read adapter configs and tensor headers.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mixer.lora.adapter import (
    FACTOR_KEY,
    AdapterError,
    expected_shapes,
    fit_problems,
    projections,
    read_adapter_config,
    tensor_shapes,
    unshareable,
)
from mixer.lora.factors import FUSED_INTO, held_elements, whole_layout

# Decoder families whose vLLM layers mixer.lora.model knows: attention in self_attn (qkv_proj,
# attn, o_proj) and an MLP of gate_up_proj and down_proj, in model.layers.
SHARED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Serving:
    """The mode a manifest is served in, why, and the bytes of weights each component holds."""

    mode: Literal["shared", "merged"]
    reason: str
    weight_bytes: dict[str, int]

    def describe(self) -> str:
        if self.mode == "shared":
            return f"LoRA components served on one shared base ({self.reason})"
        return f"components served as merged sub-models: {self.reason}"


def choose(manifest) -> Serving:
    """The manifest's serving mode; AdapterError if it forces `shared` where that is not exact."""
    if manifest.lora_mode == "merged":
        return served("merged", "the manifest asks for lora_mode: merged", manifest)
    obstacle = shared_obstacle(manifest)
    if obstacle is None:
        return served("shared", "every component but the reference is a LoRA adapter on it", manifest)
    if manifest.lora_mode == "shared":
        raise AdapterError(f"lora_mode is 'shared', but {obstacle}; use lora_mode: auto or merged")
    return served("merged", obstacle, manifest)


def served(chosen: Literal["shared", "merged"], reason: str, manifest) -> Serving:
    return Serving(chosen, reason, weight_bytes(manifest, chosen))


def reference_config(manifest) -> dict:
    return json.loads((manifest.reference.path / "config.json").read_text())


def shared_obstacle(manifest) -> str | None:
    """Why the shared base cannot serve this manifest exactly, or None if it can."""
    reference = reference_config(manifest)
    architecture = (reference.get("architectures") or ["an unnamed architecture"])[0]
    if architecture not in SHARED_ARCHITECTURES:
        return f"the reference is a {architecture}; the shared base serves {list(SHARED_ARCHITECTURES)}"
    if reference.get("quantization_config"):
        return "the reference is a quantized checkpoint"
    for component in manifest.components[1:]:
        if component.path is not None:
            return f"component {component.name!r} is a full checkpoint, not a LoRA adapter on the reference"
    for component in manifest.adapters:
        config = read_adapter_config(component.name, component.adapter)
        shapes = tensor_shapes(component.adapter)
        reason = unshareable(config, shapes)
        if reason is None and (problems := fit_problems(reference, shapes)):
            reason = "it does not fit the reference: " + "; ".join(problems[:3])
        if reason is None:
            try:
                projections(config, shapes)
            except AdapterError as err:
                reason = str(err)
        if reason is not None:
            return f"adapter {component.name!r}: {reason}"
    return None


def lora_terms(manifest, component) -> list[dict]:
    """What the shared base adds to its layers for one component: nothing for the reference;
    an adapter's factors for a policy or adapter baseline; for a reward soup, each weighted
    policy's factors times its weight, which is exactly sum_k w_k s_k B_k A_k (peft's 'cat'
    combination, unmerged)."""
    if component is manifest.reference:
        return []
    if component.adapter is not None:
        return [_term(component.adapter, 1.0)]
    adapters = {p.name: p.adapter for p in manifest.policies}
    return [_term(adapters[policy], weight) for policy, weight in component.soup.items() if weight > 0]


def _term(folder: Path, weight: float) -> dict:
    config = read_adapter_config(folder.name, folder)
    found = projections(config, tensor_shapes(folder))
    return {"adapter": str(folder), "weight": weight, "scalings": {p.module: p.scaling for p in found}}


def weight_bytes(manifest, chosen: Literal["shared", "merged"]) -> dict[str, int]:
    """Bytes of weights each component holds in the engine, in the serving dtype: shared, the
    reference holds the base and every other component only the deltas built from its factors
    (a soup: from its ingredients'); merged, every component is a whole model."""
    size = DTYPE_BYTES[manifest.dtype]
    model = size * _elements(_checkpoint_shapes(manifest.reference.path))
    sizes = expected_shapes(reference_config(manifest)) if chosen == "shared" else {}
    held = {}
    for component in manifest.components:
        if component is manifest.reference:
            held[component.name] = model
        elif chosen == "merged":
            own = component.path is not None and component.adapter is None and component.soup is None
            held[component.name] = size * _elements(_checkpoint_shapes(component.path)) if own else model
        else:
            folders = [Path(term["adapter"]) for term in lora_terms(manifest, component)]
            held[component.name] = size * _delta_elements(folders, sizes)
    return held


def _delta_elements(folders: list[Path], sizes: dict[str, tuple[int, int]]) -> int:
    """Elements of the deltas the shared base builds from these adapters' factors (one
    component's: a soup's ingredients share its deltas), per fused layer (mixer.lora.factors)."""
    ranks: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for folder in folders:
        for key, shape in tensor_shapes(folder).items():
            match = FACTOR_KEY.match(key)
            if match is not None and match["factor"] == "A":
                fused = FUSED_INTO[match["proj"]]
                ranks.setdefault((int(match["layer"]), fused), []).append((match["proj"], shape[0]))
    return sum(
        held_elements(found, whole_layout(fused, sizes), sizes[found[0][0]][1]) for (_, fused), found in ranks.items()
    )


def _checkpoint_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            shapes |= {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    return shapes


def _elements(shapes: dict[str, tuple[int, ...]]) -> int:
    total = 0
    for shape in shapes.values():
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total
