"""Sequence log-probs of every component, recorded while the engine decodes.

Fitting MPO weights needs log pi_k(y|x) for each sampled or supplied response y and every
component k. A recording request makes its steps run every component (mixer.needed), so
nothing is computed twice: at each step the logits processor hands this module the step's
per-component log-probs of a recording request's row; once the token chosen at that step
is known (it is appended to the request's output list by the next step, or by the time the
request has finished), its log-probs are added to the request's running sums. For supplied responses the processor
also forces the next token, so the same mechanism scores them (forced decoding).

A recording may also name mixtures (weight vectors over all components, extra_args
["mpo_record_mixtures"]): for each, the served mixture's log-prob of every token is summed too,
computed from the step's component log-probs by mixer.math exactly as the model mixes a row,
at a temperature if one is named (extra_args["mpo_record_temperature"]: log_softmax of the
mixture over it, as vLLM's sampler divides the logits). That is log q(y|x) of a sample drawn
from the mixture (what importance weights against it need), and the served margin of a
preference pair under any number of weight sets from one forced decoding.

Lives in the worker process; the server collects finished sums through the worker
extension (`MixtureWorkerExtension.take_recorded`).
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from mixer.math import mix_logprobs


@dataclass
class Recording:
    output: list[int]  # the request's running output token ids (vLLM's own list)
    forced: list[int] | None
    sums: np.ndarray  # (C + W,) float64 running sums of log pi_k(token), then of each mixture's
    mixtures: torch.Tensor | None = None  # (W, C) normalised weights of the mixtures recorded too
    temperature: float = 1.0  # the mixtures' sampling temperature
    expansion: torch.Tensor | None = None  # (C,) normalised weights to expand the served log-prob around
    expanded: np.ndarray | None = None  # (1 + C + C*C,) sums of log Z_t, its gradient and Hessian
    counted: int = 0  # output tokens already added to sums
    # Log-probs of the step in flight: (C + W, V) when the token is sampled, (C + W,) for a forced one.
    pending: torch.Tensor | None = field(default=None, repr=False)
    pending_expansion: np.ndarray | None = field(default=None, repr=False)  # the step's, added with its token

    def step_expansion(self, logprobs: torch.Tensor) -> np.ndarray | None:
        """log Z_t, E_q[log pi] and Cov_q[log pi] of this step at mu = expansion / tau (float64)."""
        if self.expansion is None:
            return None
        lp = logprobs.double()  # (C, V)
        scores = (self.expansion.double() / self.temperature) @ lp  # (V,)
        normaliser = torch.logsumexp(scores, dim=0)
        q = torch.exp(scores - normaliser)
        mean = lp @ q  # (C,)
        centred = lp - mean.unsqueeze(1)
        covariance = (centred * q) @ centred.t()  # (C, C)
        return torch.cat([normaliser.reshape(1), mean, covariance.reshape(-1)]).cpu().numpy()

    def step_logprobs(self, logprobs: torch.Tensor) -> torch.Tensor:
        """The step's (C, V) component log-probs, with each recorded mixture's below: (C + W, V)."""
        if self.mixtures is None:
            return logprobs
        count = self.mixtures.shape[0]
        mixed = mix_logprobs(logprobs.unsqueeze(1).expand(-1, count, -1), self.mixtures)  # (W, V)
        if self.temperature != 1.0:
            mixed = torch.log_softmax(mixed / self.temperature, dim=-1)
        return torch.cat([logprobs, mixed])

    def settle(self) -> None:
        """Add the pending step's log-probs once its token is in the output list. A step whose
        token never arrives (vLLM discards the token sampled for a partly prefilled prompt) is
        simply replaced by the next one."""
        if self.pending is None or len(self.output) <= self.counted:
            return
        token = self.output[self.counted]
        column = self.pending if self.pending.dim() == 1 else self.pending[:, token]
        self.sums += column.double().cpu().numpy()
        if self.pending_expansion is not None:
            self.expanded = self.pending_expansion if self.expanded is None else self.expanded + self.pending_expansion
        self.counted += 1
        self.pending = self.pending_expansion = None

    def result(self) -> dict:
        self.settle()
        components = len(self.sums) - (0 if self.mixtures is None else self.mixtures.shape[0])
        return {
            "logprobs": self.sums[:components].tolist(),
            "mixtures": self.sums[components:].tolist(),
            "expansion": None if self.expanded is None else self.expanded.tolist(),
            "token_ids": list(self.output[: self.counted]),
        }


class Recorder:
    """Recordings by key, for the requests of this worker. A request with n > 1 fans out
    into children that share its key: each child (its own output list) gets a recording."""

    def __init__(self) -> None:
        self.active: dict[str, list[Recording]] = {}

    def _find(self, key: str, output: list[int]) -> Recording | None:
        return next((r for r in self.active.get(key, ()) if r.output is output), None)

    def start(
        self,
        key: str,
        output: list[int],
        forced: list[int] | None,
        components: int,
        mixtures: list[list[float]] | None = None,
        temperature: float = 1.0,
        expansion: list[float] | None = None,
    ) -> None:
        """mixtures: normalised weight vectors (over all components) whose served log-probs, at
        `temperature`, to record; expansion: the one (normalised) to expand the served log-prob around."""
        if self._find(key, output) is None:  # a preempted request re-added keeps its recording
            table = torch.tensor(mixtures, dtype=torch.float32).reshape(-1, components) if mixtures else None
            sums = np.zeros(components + (0 if table is None else table.shape[0]))
            centre = None if expansion is None else torch.tensor(expansion, dtype=torch.float64)
            recording = Recording(output, forced, sums, table, float(temperature), centre)
            self.active.setdefault(key, []).append(recording)

    def observe(self, key: str, output: list[int], logprobs: torch.Tensor) -> int | None:
        """Record this step's (C, V) log-probs for the request; returns the token to force, if any."""
        recording = self._find(key, output)
        if recording is None:  # already handed out (its caller gave up): nothing to record
            return None
        recording.settle()
        if recording.forced is None:
            recording.pending = recording.step_logprobs(logprobs).clone()
            recording.pending_expansion = recording.step_expansion(logprobs)
            return None
        step = len(recording.output)
        if step >= len(recording.forced):
            return None
        token = recording.forced[step]
        recording.pending = recording.step_logprobs(logprobs)[:, token].clone()  # the token is known: one column
        recording.pending_expansion = recording.step_expansion(logprobs)
        return token

    def take(self, keys: list[str]) -> dict[str, list[dict]]:
        """Results of finished requests, one per child; each key is handed out once."""
        return {key: [r.result() for r in self.active.pop(key)] for key in keys if key in self.active}


RECORDER = Recorder()
