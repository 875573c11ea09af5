"""The shared-base mixture: the reference's weights once, each LoRA component's factors, one
read of the base per step.

The reference is built as an ordinary vLLM model of its family (its weights loaded once,
under its own prefix). Every other component is the same base plus its low-rank deltas, so
it needs nothing of its own but its factors and its attention layers: hidden states differ
per component, so each keeps its own KV cache (a vLLM Attention per layer under its own
prefix), and paged KV, continuous batching, the needed-set prefix-cache salt, component
skipping and recording work exactly as with full sub-models.

A step stacks the token rows of the components it runs (STEP.forwarded) and runs the base
once over all of them: each base linear layer multiplies the stacked rows once and adds each
component's delta to its rows, norms, rotary embeddings and activations run on the stacked
rows, and attention runs per component on its own KV (mixer.lora.layers). The lm_head, shared
too, runs once over the stacked rows; mixing is MixtureModel's, as for full sub-models.

Kept eager: a compiled graph would freeze the Python loop over the step's components.
"""

from pathlib import Path

import torch
from torch import nn
from vllm.compilation.backends import set_model_tag
from vllm.config import VllmConfig
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.models.utils import init_vllm_registered_model
from vllm.transformers_utils.config import get_config

from mixer.lora.adapter import FACTOR_KEY, read_tensors
from mixer.lora.factors import FUSED, Factor, fuse
from mixer.lora.layers import (
    ComponentAttention,
    StackedLoRAMethod,
    attention_recipes,
    clone_attention,
    engine_matmul,
    layout,
)
from mixer.model import MixtureModel
from mixer.step_state import STEP

BLOCK = {"qkv_proj": "self_attn", "o_proj": "self_attn", "gate_up_proj": "mlp", "down_proj": "mlp"}
FUSED_INTO = {projection: fused for fused, projections in FUSED.items() for projection in projections}


class AttentionLayers(nn.Module):
    """A component's own attention layers, named like the base's ('<name>.model.layers.<i>.
    self_attn.attn'): a component of the shared base owns nothing else."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList()
        for attention in layers:
            layer = nn.Module()
            layer.self_attn = nn.Module()
            layer.self_attn.attn = attention
            self.model.layers.append(layer)


class SharedBaseMixtureForCausalLM(MixtureModel):
    """Reference + LoRA components (policies, adapter baselines, soups of adapters) on one base."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__(vllm_config)
        components = self.spec["components"]
        reference = components[0]
        base_config = get_config(reference["path"], trust_remote_code=False)
        with attention_recipes() as recipes, set_model_tag(reference["name"]):
            base = init_vllm_registered_model(vllm_config=vllm_config, hf_config=base_config, prefix=reference["name"])
        self.add_module(reference["name"], base)
        self.hidden_size: int = base_config.hidden_size
        self.secondary_weights = [
            DefaultModelLoader.Source(str(Path(reference["path"])), None, prefix=reference["name"] + ".")
        ]
        layers = decoder_layers(base)
        attentions = [[layer.self_attn.attn for layer in layers]]
        for component in components[1:]:
            own = [
                clone_attention(recipes[a.layer_name], component["name"] + a.layer_name[len(reference["name"]) :])
                for a in attentions[0]
            ]
            self.add_module(component["name"], AttentionLayers(own))
            attentions.append(own)
        for i, layer in enumerate(layers):
            layer.self_attn.attn = ComponentAttention([per_component[i] for per_component in attentions])
        self._install_deltas(layers, components, vllm_config.model_config.dtype)

    @property
    def base(self) -> nn.Module:
        return getattr(self, self.component_names[0])

    def _install_deltas(self, layers: list[nn.Module], components: list[dict], dtype: torch.dtype) -> None:
        """Give every base linear layer that some component adapts a StackedLoRAMethod with
        each component's delta on this rank."""
        device = next(self.base.parameters()).device
        tensors = {term["adapter"]: read_tensors(Path(term["adapter"])) for c in components for term in c["lora"]}
        # factors[(layer, fused layer)][component] = [Factor, ...]
        factors: dict[tuple[int, str], dict[int, list[Factor]]] = {}
        for index, component in enumerate(components):
            for term in component["lora"]:
                found = tensors[term["adapter"]]
                for module, scaling in term["scalings"].items():
                    match = FACTOR_KEY.match(f"base_model.model.{module}.lora_A.weight")
                    a = found[f"base_model.model.{module}.lora_A.weight"]
                    b = found[f"base_model.model.{module}.lora_B.weight"]
                    key = (int(match["layer"]), FUSED_INTO[match["proj"]])
                    factor = Factor(match["proj"], a, b, scaling * term["weight"])
                    factors.setdefault(key, {}).setdefault(index, []).append(factor)
        for (i, fused), by_component in factors.items():
            linear = getattr(getattr(layers[i], BLOCK[fused]), fused)
            part = layout(linear, fused)
            linear.quant_method = StackedLoRAMethod(
                {c: fuse(found, part, dtype, device, engine_matmul) for c, found in by_component.items()}
            )

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors=None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The base once over the step's components' stacked rows: (T,) -> (T, A * hidden)."""
        run = self.planned()
        STEP.forwarded = run
        blocks = len(run)
        if blocks == 1:
            return self.base(input_ids, positions)
        hidden = self.base(input_ids.repeat(blocks), positions.repeat(blocks))  # (A*T, d)
        return hidden.view(blocks, -1, self.hidden_size).transpose(0, 1).reshape(-1, blocks * self.hidden_size)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The shared lm_head once over every run component's rows, then each row's mixture."""
        run = self.forwarded()
        rows = hidden_states.shape[0]
        stacked = hidden_states.view(rows, len(run), self.hidden_size).transpose(0, 1).reshape(-1, self.hidden_size)
        logits = self.base.compute_logits(stacked)  # (A*B, V)
        return self.mix(logits.view(len(run), rows, -1), run)


def decoder_layers(base: nn.Module) -> list[nn.Module]:
    """The base's decoder layers, checked to have the modules the shared path replaces."""
    layers = list(base.model.layers)
    for layer in layers:
        attention = getattr(getattr(layer, "self_attn", None), "attn", None)
        linears = [getattr(getattr(layer, BLOCK[fused], None), fused, None) for fused in FUSED]
        if type(attention).__name__ != "Attention" or any(linear is None for linear in linears):
            raise RuntimeError(
                f"{type(base).__name__} has no self_attn.attn / qkv_proj / o_proj / gate_up_proj / down_proj in "
                "each layer: the shared base cannot serve it (mixer.lora.mode should have chosen merged)"
            )
    return layers
