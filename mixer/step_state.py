"""What the worker, the mixture model and the logits processor share within one engine step.

All live in the same worker process and run in sequence: the logits processor learns of the
step's requests (update_state, before the forward pass) and plans the step, the model's
forward and compute_logits run the planned components, then the sampler runs the logits
processors (apply) for recording and forced tokens. A module-level holder is the
simplest channel that needs no change to vLLM's model runner.
"""

from dataclasses import dataclass

import torch


@dataclass
class StepState:
    """Planned by the logits processor (mixer.processor) whenever the batch changes:
    active: the components (indices, reference first) the step runs; None for all, also
    before the first request (vLLM's warm-up and profiling runs).
    row_weights: (B, C) normalised weights of each scheduled request, in the order of the
    sampling rows compute_logits gets; default_rows: (B,) the rows of requests without weights,
    which take the manifest's weights instead. None before the first request.
    forwarded: the components whose hidden states the last forward returned, in order.
    recording_rows: the sampling rows of recording requests, in order; None for none.
    component_logprobs: (len(forwarded), len(recording_rows), V) log-probs of the recording
    rows in the last compute_logits call, for the processor's recording; None for none.
    prompt_weights: while one request's prompt log-probs are computed, its weights.
    rows: inside the shared base's compiled layers (mixer.lora.compiled), each stacked row's
    component index, so that the deltas read the step's components from a tensor the graph
    takes as input rather than from `forwarded`, which a trace would freeze."""

    active: list[int] | None = None
    row_weights: torch.Tensor | None = None
    default_rows: torch.Tensor | None = None
    forwarded: list[int] | None = None
    recording_rows: list[int] | None = None
    component_logprobs: torch.Tensor | None = None
    prompt_weights: list[float] | None = None
    rows: torch.Tensor | None = None

    def running(self) -> list[int]:
        """`forwarded` during a forward pass, which sets it before any layer runs."""
        if self.forwarded is None:
            raise RuntimeError("no forward pass has set the step's components")
        return self.forwarded


STEP = StepState()
