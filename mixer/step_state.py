"""What the mixture model hands to the logits processor within one engine step.

Both live in the same worker process and run in sequence: the model's compute_logits for
the step's sampling rows, then the sampler with its logits processors. A module-level holder
is the simplest channel that needs no change to vLLM's model runner.
"""

from dataclasses import dataclass

import torch


@dataclass
class StepState:
    """Per-component log-probs (C, B, V) and their default-weight mixture (B, V) of the
    most recent compute_logits call, the engine's default weights (C,), and, while one
    request's prompt log-probs are computed, that request's weights."""

    component_logprobs: torch.Tensor | None = None
    default_mixture: torch.Tensor | None = None
    default_weights: torch.Tensor | None = None
    prompt_weights: list[float] | None = None


STEP = StepState()
