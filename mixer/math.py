"""The log-linear mixing rule, as pure torch functions.

pi_lambda(t | prefix) is proportional to prod_k pi_k(t | prefix) ** lambda_k, so
log pi_lambda = log_softmax(sum_k lambda_k * log_softmax(logits_k)). Everything is fp32:
bf16 log-probs lose the 1e-4 agreement a transformers oracle can check.

Where every component's logits come from one head that is linear in the hidden state
(logits_k = h_k W, as on the shared base), log_softmax drops each component's normaliser
and, with weights that sum to 1, sum_k lambda_k h_k W = (sum_k lambda_k h_k) W: the mixture
is log_softmax(mixed_hidden(h, lambda) W), one head row per request instead of one per
component.
"""

import torch


def component_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """Per-component next-token log-probs in fp32: (C, B, V) -> (C, B, V)."""
    return torch.log_softmax(logits.float(), dim=-1)


def mix_logprobs(logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mixture log-probs from per-component log-probs.

    logprobs: (C, B, V) fp32 log-probs of each component.
    weights: (C,) for one mixture for every row, or (B, C) for a mixture per row.
    Returns (B, V) normalised log-probs of the mixture.

    Components with weight 0 contribute nothing, also where their log-prob is -inf (a
    masked token): 0 * -inf would be NaN, so zero weights are skipped explicitly.
    """
    weights = weights.to(device=logprobs.device, dtype=torch.float32)
    if logprobs.shape[0] == 1 and bool((weights == 1).all()):
        return logprobs[0]  # one component at full weight: already normalised log-probs
    if weights.dim() == 1:
        weights = weights.unsqueeze(0).expand(logprobs.shape[1], -1)  # (B, C)
    active = weights != 0  # (B, C)
    # (C, B, V): zero-weight entries become exactly 0 instead of 0 * -inf = NaN.
    scaled = torch.where(
        active.t().unsqueeze(-1), logprobs * weights.t().unsqueeze(-1), torch.zeros((), device=logprobs.device)
    )
    return torch.log_softmax(scaled.sum(dim=0), dim=-1)


def mixed_hidden(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_k weights[:, k] * hidden[k] in fp32: hidden (A, B, d), weights (B, A) -> (B, d).

    One fused multiply-add per component in index order, on every row alike: a component
    with weight 0 adds exactly nothing, so a row's result is the same bits whichever other
    components its step ran."""
    mixed = torch.zeros(hidden.shape[1:], dtype=torch.float32, device=hidden.device)
    weights = weights.to(device=hidden.device, dtype=torch.float32)
    for k in range(hidden.shape[0]):
        mixed.addcmul_(hidden[k].float(), weights[:, k : k + 1])
    return mixed


def normalised(weights: list[float]) -> list[float]:
    """Weights divided by their sum. The mixture is not scale-invariant (scaling acts as a
    temperature), so every vector is normalised; one that already sums to 1 is left
    bit-identical, so that equal vectors give bit-identical mixtures."""
    total = float(sum(weights))
    return [float(w) for w in weights] if abs(total - 1.0) < 1e-6 else [float(w) / total for w in weights]
