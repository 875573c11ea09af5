"""The step's plan from its requests, recording and forced tokens, as a vLLM V1 logits processor.

vLLM tells its logits processors about every change to the batch (requests added, removed,
moved) before the step's forward pass, so this processor is where the mixture learns which
requests a step serves, in the order of the sampling rows. From that it plans the step
(STEP.active: the union of the components the rows need, mixer.needed; STEP.row_weights:
each row's weights), which the model then uses to run only those components and to return
each row's own mixture.

A request carries its weights over all components in SamplingParams.extra_args
["mpo_weights"] (the server always sets them, taken when it admits the request); one
without (only vLLM's own warm-up runs) takes the manifest's weights and needs every component. A request with
extra_args["mpo_record"] also has its per-component log-probs recorded (mixer.recording),
and with extra_args["mpo_force"] its tokens are forced, one per step; extra_args
["mpo_record_mixtures"] names weight vectors whose served log-probs are recorded beside the
components'. Forcing changes the logits, so the processor is not argmax-invariant.
"""

import math
from dataclasses import dataclass

import torch
from vllm import SamplingParams
from vllm.config import VllmConfig
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from mixer.manifest import MIXTURE_CONFIG_KEY
from mixer.math import normalised
from mixer.needed import (
    FORCE_ARG,
    RECORD_ARG,
    RECORD_EXPANSION_ARG,
    RECORD_MIXTURES_ARG,
    RECORD_TEMPERATURE_ARG,
    WEIGHTS_ARG,
    needed_components,
)
from mixer.recording import RECORDER
from mixer.step_state import STEP


def _check_weights(name: str, weights) -> None:
    if not isinstance(weights, list) or not all(isinstance(w, (int, float)) for w in weights):
        raise ValueError(f"{name} must be a list of numbers, got {weights!r}")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero, got {weights!r}")


@dataclass(frozen=True)
class RowState:
    weights: list[float] | None  # normalised, over all components; None: the live defaults
    needed: tuple[int, ...]  # the components the request reads
    record: str | None  # recording key
    output: list[int]  # the request's output token ids (vLLM's running list)


class MixtureLogitsProcessor(LogitsProcessor):
    """Plans each step from its rows; records and forces the recording rows."""

    @classmethod
    def validate_params(cls, params: SamplingParams) -> None:
        """Runs in the front-end process, which does not know the component count: the
        server builds full-length vectors from the manifest (server.serving.mixture)."""
        extra = params.extra_args or {}
        weights = extra.get(WEIGHTS_ARG)
        if weights is not None:
            _check_weights(WEIGHTS_ARG, weights)
        if RECORD_ARG in extra and (weights is None or not isinstance(extra[RECORD_ARG], str)):
            raise ValueError(f"{RECORD_ARG} needs a string key and explicit {WEIGHTS_ARG}")
        mixtures = extra.get(RECORD_MIXTURES_ARG)
        if mixtures is not None:
            if RECORD_ARG not in extra or weights is None or not isinstance(mixtures, list) or not mixtures:
                raise ValueError(
                    f"{RECORD_MIXTURES_ARG} must be a non-empty list of weight vectors on a recording request"
                )
            if any(not isinstance(m, list) or len(m) != len(weights) for m in mixtures):
                raise ValueError(f"{RECORD_MIXTURES_ARG}: every vector must be as long as {WEIGHTS_ARG}")
            for vector in mixtures:
                _check_weights(RECORD_MIXTURES_ARG, vector)
        temperature = extra.get(RECORD_TEMPERATURE_ARG, 1.0)
        if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"{RECORD_TEMPERATURE_ARG} must be a positive number, got {temperature!r}")
        expansion = extra.get(RECORD_EXPANSION_ARG)
        if expansion is not None:
            if (
                RECORD_ARG not in extra
                or weights is None
                or not isinstance(expansion, list)
                or len(expansion) != len(weights)
            ):
                raise ValueError(f"{RECORD_EXPANSION_ARG} must be a weight vector as long as {WEIGHTS_ARG}")
            _check_weights(RECORD_EXPANSION_ARG, expansion)
        forced = extra.get(FORCE_ARG)
        valid_forced = isinstance(forced, list) and forced and all(isinstance(t, int) for t in forced)
        if forced is not None and (RECORD_ARG not in extra or not valid_forced):
            raise ValueError(f"{FORCE_ARG} must be a non-empty list of token ids on a recording request")

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        spec = getattr(vllm_config.model_config.hf_config, MIXTURE_CONFIG_KEY)
        self.components = len(spec["components"])
        self.rows: dict[int, RowState] = {}
        self.batch_size = 0
        self._recording: list[tuple[int, str, RowState]] = []  # (row, recording key, state)

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        def new_state(params: SamplingParams, _prompt, output: list[int]) -> RowState:
            extra = params.extra_args or {}
            weights = extra.get(WEIGHTS_ARG)
            record = extra.get(RECORD_ARG)
            if record is not None:
                mixtures = [normalised(m) for m in extra.get(RECORD_MIXTURES_ARG) or []]
                temperature = extra.get(RECORD_TEMPERATURE_ARG, 1.0)
                expansion = extra.get(RECORD_EXPANSION_ARG)
                RECORDER.start(
                    record,
                    output,
                    extra.get(FORCE_ARG),
                    self.components,
                    mixtures,
                    temperature,
                    None if expansion is None else normalised(expansion),
                )
            return RowState(
                None if weights is None else normalised(weights),
                needed_components(extra, self.components),
                record,
                output,
            )

        changed = process_dict_updates(self.rows, batch_update, new_state)
        if batch_update is not None and batch_update.batch_size != self.batch_size:
            self.batch_size, changed = batch_update.batch_size, True
        if changed:
            self.plan()

    def plan(self) -> None:
        """STEP's plan for the current rows, kept until the batch changes. An empty batch
        leaves no plan: vLLM's own runs between requests then run everything."""
        if self.batch_size == 0:
            STEP.active = STEP.row_weights = STEP.default_rows = STEP.recording_rows = None
            self._recording = []
            return
        rows = [self.rows.get(i) for i in range(self.batch_size)]
        everything = tuple(range(self.components))
        active = set().union(*(everything if row is None else row.needed for row in rows))
        uniform = [1.0 / self.components] * self.components  # placeholder where defaults apply
        STEP.active = sorted(active) if len(active) < self.components else None
        STEP.row_weights = torch.tensor(
            [uniform if row is None or row.weights is None else row.weights for row in rows], dtype=torch.float32
        ).reshape(len(rows), self.components)
        STEP.default_rows = torch.tensor([row is None or row.weights is None for row in rows], dtype=torch.bool)
        self._recording = [
            (i, row.record, row) for i, row in enumerate(rows) if row is not None and row.record is not None
        ]
        STEP.recording_rows = [i for i, _, _ in self._recording] or None

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._recording:
            return logits
        logprobs = STEP.component_logprobs
        # A recording request needs every component (mixer.needed), so its step ran them all.
        if logprobs is None or logprobs.shape[1] != len(self._recording) or logprobs.shape[0] != self.components:
            raise RuntimeError("recording needs every component's log-probs of this step")
        for j, (row, key, state) in enumerate(self._recording):
            forced = RECORDER.observe(key, state.output, logprobs[:, j])
            if forced is not None:
                logits[row] = float("-inf")
                logits[row, forced] = 0.0
        return logits
