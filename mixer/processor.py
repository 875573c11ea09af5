"""Per-request mixture weights, recording and forced tokens, as a vLLM V1 logits processor.

The model returns the mixture for the engine's default weights. A request may carry its own
weights over all components in SamplingParams.extra_args["mpo_weights"]; where they differ
from the current defaults, this processor adds (own mixture - default mixture) to its row.
Adding the difference, rather than overwriting, keeps what vLLM already applied to the row
(allowed tokens, bad words, min_tokens, logit_bias), and penalties come after. It must not
be argmax-invariant.

A request with extra_args["mpo_record"] also has its per-component log-probs recorded
(mixer.recording), and with extra_args["mpo_force"] its tokens are forced, one per step.
"""

import math
from dataclasses import dataclass

import torch
from vllm import SamplingParams
from vllm.config import VllmConfig
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from mixer.math import mix_logprobs
from mixer.recording import FORCE_ARG, RECORD_ARG, RECORDER
from mixer.step_state import STEP

WEIGHTS_ARG = "mpo_weights"


def request_weights(params: SamplingParams) -> list[float] | None:
    """The request's weights over all components, or None for the default mixture."""
    extra = params.extra_args or {}
    return extra.get(WEIGHTS_ARG)


@dataclass(frozen=True)
class RowState:
    weights: list[float]  # normalised, over all components
    record: str | None  # recording key
    output: list[int]  # the request's output token ids (vLLM's running list)


def _normalised(weights: list[float]) -> list[float]:
    total = float(sum(weights))
    # The mixture is not scale-invariant (scaling acts as a temperature): normalise, but
    # leave weights that already sum to 1 bit-identical to the defaults they may equal.
    return [float(w) for w in weights] if abs(total - 1.0) < 1e-6 else [float(w) / total for w in weights]


class MixtureLogitsProcessor(LogitsProcessor):
    """Replaces a row's default mixture with the mixture for that request's weights."""

    @classmethod
    def validate_params(cls, params: SamplingParams) -> None:
        """Runs in the front-end process, which does not know the component count: the
        server builds full-length vectors from the manifest (server.mixture)."""
        extra = params.extra_args or {}
        weights = extra.get(WEIGHTS_ARG)
        if weights is not None:
            if not isinstance(weights, list) or not all(isinstance(w, (int, float)) for w in weights):
                raise ValueError(f"{WEIGHTS_ARG} must be a list of numbers, got {weights!r}")
            if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"{WEIGHTS_ARG} must be finite, non-negative and not all zero, got {weights!r}")
        if RECORD_ARG in extra and (weights is None or not isinstance(extra[RECORD_ARG], str)):
            raise ValueError(f"{RECORD_ARG} needs a string key and explicit {WEIGHTS_ARG}")
        forced = extra.get(FORCE_ARG)
        valid_forced = isinstance(forced, list) and forced and all(isinstance(t, int) for t in forced)
        if forced is not None and (RECORD_ARG not in extra or not valid_forced):
            raise ValueError(f"{FORCE_ARG} must be a non-empty list of token ids on a recording request")

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        self.device = device
        self.rows: dict[int, RowState] = {}
        self._index: torch.Tensor | None = None  # (R,) rows with their own weights
        self._weights: torch.Tensor | None = None  # (R, C)
        self._recording: list[tuple[int, RowState]] = []

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        def new_state(params: SamplingParams, _prompt, output: list[int]) -> RowState | None:
            extra = params.extra_args or {}
            weights = extra.get(WEIGHTS_ARG)
            if weights is None:
                return None
            record = extra.get(RECORD_ARG)
            if record is not None:
                RECORDER.start(record, output, extra.get(FORCE_ARG), len(weights))
            return RowState(_normalised(weights), record, output)

        if process_dict_updates(self.rows, batch_update, new_state) or self._index is None:
            rows = sorted(self.rows)
            self._index = torch.tensor(rows, dtype=torch.long, device=self.device)
            self._weights = torch.tensor([self.rows[r].weights for r in rows], dtype=torch.float32, device=self.device)
            self._recording = [(r, self.rows[r]) for r in rows if self.rows[r].record is not None]

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        logprobs, default = STEP.component_logprobs, STEP.default_mixture
        if logprobs is None or default is None or logprobs.shape[1] != logits.shape[0]:
            raise RuntimeError("per-request mixture weights need the mixture model's log-probs of this step")
        assert self._index is not None and self._weights is not None
        # Rows whose weights equal the current defaults already hold their mixture.
        differs = (self._weights != STEP.default_weights).any(dim=1)
        if bool(differs.any()):
            index, weights = self._index[differs], self._weights[differs]
            own = mix_logprobs(logprobs[:, index], weights)  # (R, V)
            logits[index] += own - default[index]
        for row, state in self._recording:
            forced = RECORDER.observe(state.record, state.output, logprobs[:, row])
            if forced is not None:
                logits[row] = float("-inf")
                logits[row, forced] = 0.0
        return logits
