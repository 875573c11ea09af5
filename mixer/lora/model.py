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
component's delta to its rows (all components' in one down GEMM, the up folded into the base
layer's own, mixer.lora.factors.StackedDeltas), norms, rotary embeddings and activations run on
the stacked rows, and attention runs per component on its own KV (mixer.lora.layers). Layers
below the first one any adapter changes are the same for every component: they run once and keep one
KV cache. The lm_head, shared too, runs once per request on its weighted hidden state, which
is the mixture where the head is linear (mixer.math); each component's own logits are computed
only for the rows that record them.

Without enforce_eager the layers from the fork on run compiled (mixer.lora.compiled says how
the step's components stay an input of the graph); eager is the CPU default (server.settings).
"""

from pathlib import Path

import torch
from torch import nn
from vllm.compilation.backends import set_model_tag
from vllm.config import VllmConfig
from vllm.logger import init_logger
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.models.utils import init_vllm_registered_model
from vllm.transformers_utils.config import get_config

from mixer.lora.adapter import FACTOR_KEY, read_tensors
from mixer.lora.compiled import ForkedLayers
from mixer.lora.factors import FUSED, FUSED_INTO, Factor, fuse, stack, torch_matmul
from mixer.lora.layers import (
    ComponentAttention,
    StackedLoRAMethod,
    attention_recipes,
    clone_attention,
    engine_matmul,
    layout,
)
from mixer.manifest import DELTA_GEMMS_KEY, DELTA_MATMUL_KEY
from mixer.math import component_logprobs, mixed_hidden
from mixer.model import MixtureModel
from mixer.step_state import STEP

# Under vLLM's logger, so that the engine's process prints it with vLLM's own lines.
logger = init_logger("vllm.mpo.shared_base")

BLOCK = {"qkv_proj": "self_attn", "o_proj": "self_attn", "gate_up_proj": "mlp", "down_proj": "mlp"}


class AttentionLayers(nn.Module):
    """A component's own attention layers, named like the base's ('<name>.model.layers.<i>.
    self_attn.attn'), for the layers at and above the fork: a component of the shared base
    owns nothing else."""

    def __init__(self, layers: dict[int, nn.Module]) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleDict()
        for index, attention in layers.items():
            layer = nn.Module()
            layer.self_attn = nn.Module()
            layer.self_attn.attn = attention
            self.model.layers[str(index)] = layer


class SharedBaseMixtureForCausalLM(MixtureModel):
    """Reference + LoRA components (policies, adapter baselines, soups of adapters) on one base.

    Below the first layer any component adapts (`fork`), every component's hidden states,
    and so its keys and values, are those of the base: bit for bit, since they are the same
    rows through the same layers. Those layers run once, unstacked, and keep one KV cache
    (the reference's) for all components; from `fork` on the rows are stacked per component
    and each component has its own attention layers. Adapters on every layer fork at 0."""

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
        factors = read_factors(components)
        self.fork: int = min([i for i, _ in factors] or [len(layers)])
        forked = range(self.fork, len(layers))
        attentions = [{i: layers[i].self_attn.attn for i in forked}]
        for component in components[1:]:
            own = {
                i: clone_attention(recipes[a.layer_name], component["name"] + a.layer_name[len(reference["name"]) :])
                for i, a in attentions[0].items()
            }
            self.add_module(component["name"], AttentionLayers(own))
            attentions.append(own)
        for i in forked:
            layers[i].self_attn.attn = ComponentAttention([per_component[i] for per_component in attentions])
        dtype = vllm_config.model_config.dtype
        device = next(base.parameters()).device
        config = vllm_config.model_config.hf_config  # the server's choices (server.engine.engine_kwargs)
        matmul = torch_matmul if getattr(config, DELTA_MATMUL_KEY, "engine") == "torch" else engine_matmul
        per_component = getattr(config, DELTA_GEMMS_KEY, "stacked") == "per_component"
        for (i, fused), by_component in factors.items():
            linear = getattr(getattr(layers[i], BLOCK[fused]), fused)
            part = layout(linear, fused)
            if per_component:
                alone = {c: fuse(found, part, dtype, device, matmul) for c, found in by_component.items()}
                method = StackedLoRAMethod(alone)
            else:
                method = StackedLoRAMethod(*stack(by_component, part, len(components), dtype, device, matmul))
            linear.quant_method = method
        # The mixture by one head row per request needs logits linear in the hidden state.
        self.linear_head: bool = getattr(getattr(base, "logits_processor", None), "soft_cap", None) is None
        with set_model_tag("shared_base"):
            self.forked = ForkedLayers(vllm_config=vllm_config, layers=tuple(layers[self.fork :]), norm=base.model.norm)
        self.compiled = not self.forked.do_not_compile
        if self.compiled and per_component:
            raise RuntimeError("compiled shared-base layers need stacked deltas: set MPO_DELTA_GEMMS=stacked")
        gemms = "two GEMMs per component" if per_component else "one down GEMM for all components, up in the base GEMM"
        how = "compiled" if self.compiled else "eager"
        logger.info("shared base: deltas on %d base layers, %s, by %s, %s", len(factors), gemms, matmul.__name__, how)

    @property
    def base(self) -> nn.Module:
        return getattr(self, self.component_names[0])

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors=None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The base's layers up to the fork once, then the rest and the final norm once over the
        step's components' stacked rows (ForkedLayers, compiled or not): (T,) -> (T, A * hidden).
        The same loop as the decoder families' own model forward (embed, layers with a
        residual, final norm), with the stacking inside."""
        run = self.planned()
        STEP.forwarded = run
        blocks = len(run)
        hidden, residual = self.base.model.embed_input_ids(input_ids), None
        for layer in self.base.model.layers[: self.fork]:
            hidden, residual = layer(positions, hidden, residual)
        if blocks > 1:
            hidden, residual, positions = stacked(hidden, blocks), stacked(residual, blocks), positions.repeat(blocks)
        if self.compiled:  # mixer.lora.compiled
            hidden = self.forked.run(hidden, residual, positions, run)
        else:
            hidden = self.forked(hidden, residual, positions, None)
        if blocks == 1:
            return hidden
        return hidden.view(blocks, -1, self.hidden_size).transpose(0, 1).reshape(-1, blocks * self.hidden_size)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Each row's mixture from the shared lm_head once per row, on its weighted hidden state
        (mixer.math says why that is the mixture); the run components' own logits only for
        the recording rows, whose per-component log-probs the processor records."""
        run = self.forwarded()
        rows = hidden_states.shape[0]
        per_component = hidden_states.view(rows, len(run), self.hidden_size).transpose(0, 1)  # (A, B, d)
        if not self.linear_head:  # a soft-capped head: every component's logits, then the rule
            logits = self.base.compute_logits(per_component.reshape(-1, self.hidden_size))
            return self.mix(logits.view(len(run), rows, -1), run)
        mixed = mixed_hidden(per_component, self.run_weights(rows, run)).to(hidden_states.dtype)
        logprobs = component_logprobs(self.base.compute_logits(mixed)[..., : self.vocab_size])
        recording = self.recording_rows()
        STEP.component_logprobs = None
        if recording is not None:
            chosen = per_component[:, recording].reshape(-1, self.hidden_size)  # (A * R, d)
            logits = self.base.compute_logits(chosen)[..., : self.vocab_size]
            STEP.component_logprobs = component_logprobs(logits.view(len(run), len(recording), -1))
        return logprobs


def stacked(rows: torch.Tensor | None, blocks: int) -> torch.Tensor | None:
    """`blocks` copies of the rows, one after the other: (T, d) -> (blocks * T, d)."""
    return None if rows is None else rows.repeat(blocks, 1)


def read_factors(components: list[dict]) -> dict[tuple[int, str], dict[int, list[Factor]]]:
    """Every component's LoRA factors, by (layer, fused base layer) and component index."""
    tensors = {term["adapter"]: read_tensors(Path(term["adapter"])) for c in components for term in c["lora"]}
    factors: dict[tuple[int, str], dict[int, list[Factor]]] = {}
    for index, component in enumerate(components):
        for term in component["lora"]:
            found = tensors[term["adapter"]]
            for module, scaling in term["scalings"].items():
                match = FACTOR_KEY.match(f"base_model.model.{module}.lora_A.weight")
                if match is None:  # (mixer.lora.adapter refused such a module when the manifest loaded)
                    raise ValueError(f"adapter module {module!r} is not a layer's projection")
                a = found[f"base_model.model.{module}.lora_A.weight"]
                b = found[f"base_model.model.{module}.lora_B.weight"]
                key = (int(match["layer"]), FUSED_INTO[match["proj"]])
                factors.setdefault(key, {}).setdefault(index, []).append(
                    Factor(match["proj"], a, b, scaling * term["weight"])
                )
    return factors


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
