"""The vLLM model classes of a mixture: what every mixture does with its components'
logits, and the mixture whose components are full sub-models.

MixtureModel is the part both kinds share: from the step's per-component logits it returns
each row's mixture log-probs for its own request's weights, before vLLM's sampler applies
masks, bias and penalties, and keeps the per-component log-probs for recording. How the
components' logits are computed is each subclass's: LogLinearMixtureForCausalLM (here) runs
each component as a complete vLLM model; SharedBaseMixtureForCausalLM (mixer.lora.model)
runs LoRA components on one shared base.

In LogLinearMixtureForCausalLM each component (reference first, then the policies) is built
from its own checkpoint under its own prefix, so each has its own KV cache layers while one
scheduler, one block table and prefix caching serve all of them. A step runs only the
components its requests need (planned into STEP by mixer.processor).
"""

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn
from vllm.compilation.backends import set_model_tag
from vllm.config import VllmConfig
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.models.utils import AutoWeightsLoader, init_vllm_registered_model
from vllm.transformers_utils.config import get_config

from mixer.manifest import MIXTURE_CONFIG_KEY
from mixer.math import component_logprobs, mix_logprobs, normalised
from mixer.step_state import STEP


class MixtureModel(nn.Module):
    """pi(t | prefix) proportional to prod_k pi_k(t | prefix) ** w_k, from per-component logits."""

    def __init__(self, vllm_config: VllmConfig) -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.spec: dict = getattr(config, MIXTURE_CONFIG_KEY)
        self.component_names: list[str] = [c["name"] for c in self.spec["components"]]
        self.vocab_size: int = config.vocab_size
        default = torch.tensor(self.spec["default_weights"], dtype=torch.float32)
        self.register_buffer("default_weights", default, persistent=False)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        # Each component embeds its own tokens in forward; this is only asked for by
        # features we do not enable (prompt embeddings), so say so plainly.
        raise NotImplementedError("a mixture has one embedding per component; prompt embeddings are not supported")

    def planned(self) -> list[int]:
        """The components this step runs: the plan's (mixer.processor), or all of them before
        the first request (vLLM's warm-up and profiling runs)."""
        return list(range(len(self.component_names))) if STEP.active is None else STEP.active

    def forwarded(self) -> list[int]:
        return STEP.forwarded if STEP.forwarded is not None else list(range(len(self.component_names)))

    def mix(self, logits: torch.Tensor, run: list[int]) -> torch.Tensor:
        """Each row's mixture log-probs (B, V), fp32, from the run components' logits (A, B, V);
        keeps the per-component log-probs for the processor's recording rows."""
        logprobs = component_logprobs(logits[..., : self.vocab_size])
        recording = self.recording_rows()
        STEP.component_logprobs = None if recording is None else logprobs[:, recording]
        return mix_logprobs(logprobs, self.run_weights(logits.shape[1], run))

    def run_weights(self, rows: int, run: list[int]) -> torch.Tensor:
        """(rows, A) each row's weights on the run components, checked to be 0 on the others."""
        weights = self.row_weights(rows)  # (B, C)
        skipped = [i for i in range(len(self.component_names)) if i not in run]
        if skipped and bool((weights[:, skipped] != 0).any()):
            raise RuntimeError(f"a row weights components {skipped} that this step did not run")
        return weights[:, run]

    def recording_rows(self) -> list[int] | None:
        """The rows whose per-component log-probs the processor records: the step's recording
        requests' sampling rows, none while one request's prompt log-probs are computed."""
        return None if STEP.prompt_weights is not None else STEP.recording_rows

    def row_weights(self, rows: int) -> torch.Tensor:
        """(rows, C) weights: one request's while its prompt log-probs are computed, the planned
        step's rows, or the default weights for every row in vLLM's warm-up runs."""
        if STEP.prompt_weights is not None:  # one request's prompt log-probs (mixer.worker)
            return torch.tensor([normalised(STEP.prompt_weights)]).expand(rows, -1)
        if STEP.row_weights is None or STEP.default_rows is None:
            return self.default_weights.unsqueeze(0).expand(rows, -1)
        if STEP.row_weights.shape[0] != rows:
            raise RuntimeError(f"the step was planned for {STEP.row_weights.shape[0]} rows, the sampler has {rows}")
        return torch.where(STEP.default_rows.unsqueeze(1), self.default_weights, STEP.row_weights)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Route '<component>.<name>' tensors to each component; the marker file is skipped."""
        loader = AutoWeightsLoader(self, ignore_unexpected_prefixes=["mpo_mixture."])
        return loader.load_weights(weights)


class LogLinearMixtureForCausalLM(MixtureModel):
    """Every component a complete vLLM model from its own checkpoint (merged adapters, soups
    and full checkpoints alike)."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__(vllm_config)
        self.hidden_sizes: list[int] = []
        self.secondary_weights: list[DefaultModelLoader.Source] = []
        for component in self.spec["components"]:
            name, path = component["name"], component["path"]
            hf_config = get_config(path, trust_remote_code=False)
            # Components are attributes, never a ModuleList: vLLM reads a layer's index from
            # the single numeric part of its name ("positive.model.layers.3...").
            with set_model_tag(name):
                submodel = init_vllm_registered_model(vllm_config=vllm_config, hf_config=hf_config, prefix=name)
            self.add_module(name, submodel)
            self.hidden_sizes.append(hf_config.hidden_size)
            self.secondary_weights.append(DefaultModelLoader.Source(str(Path(path)), None, prefix=name + "."))

    def components(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.component_names]

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors=None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the step's components on the same tokens: (T,) -> (T, their hidden sizes summed).

        Only the components some scheduled request needs (STEP.active, planned by
        mixer.processor); the others neither compute nor write KV at this step (mixer.needed
        says why that is safe)."""
        run = self.planned()
        STEP.forwarded = run
        components = self.components()
        return torch.cat([components[i](input_ids, positions, None, None) for i in run], dim=-1)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Each row's mixture log-probs (B, V) for its request's own weights."""
        run = self.forwarded()
        parts = hidden_states.split([self.hidden_sizes[i] for i in run], dim=-1)
        components = self.components()
        per_component = [
            components[i].compute_logits(h)[..., : self.vocab_size] for i, h in zip(run, parts, strict=True)
        ]
        logits = per_component[0].unsqueeze(0) if len(run) == 1 else torch.stack(per_component)  # (A, B, V)
        return self.mix(logits, run)
