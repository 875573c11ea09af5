"""Direct Preference Optimization (Rafailov et al., 2023), the few lines it takes.

The policy is pushed to raise the log-likelihood ratio to the reference of the chosen
response over the rejected one; beta is the strength of the implicit KL penalty.
"""

import torch
import torch.nn.functional as F


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Mean DPO loss over pairs; every argument is (N,) sequence log-probs."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean()


def sequence_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """Sum of log p(token | prefix) over the response tokens of each row: (N, L) -> (N,).

    response_mask marks the tokens being scored (the response and its end-of-text token).
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (logprobs * response_mask[:, 1:]).sum(dim=-1)
