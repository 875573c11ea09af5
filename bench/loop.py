"""The alternative a researcher writes today: a per-step transformers loop with one KV cache
per component, mixing the components' log-probs at every step (greedy here).

Prompts of different lengths are left-padded with an attention mask and explicit positions,
the way batched decode-time mixing code does it. A static batch decodes until its longest
request is done; shorter requests ride along.
"""

import os
from pathlib import Path

import torch


def load_models(model_dirs: list[str]) -> list:
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)
    return [AutoModelForCausalLM.from_pretrained(Path(d), dtype=torch.float32).eval() for d in model_dirs]


@torch.no_grad()
def mixed_greedy(
    models: list, weights: list[float], prompts: list[list[int]], steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`steps` greedy tokens per prompt from the log-linear mixture, and the mixture's
    log-prob of each: two [batch, steps] tensors."""
    longest = max(len(p) for p in prompts)
    input_ids = torch.tensor([[0] * (longest - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    caches: list = [None] * len(models)
    chosen, chosen_logprobs = [], []
    for _ in range(steps):
        mixed = None
        for k, model in enumerate(models):
            out = model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=caches[k],
                use_cache=True,
            )
            caches[k] = out.past_key_values
            term = weights[k] * torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            mixed = term if mixed is None else mixed + term
        logprobs = torch.log_softmax(mixed, dim=-1)
        input_ids = logprobs.argmax(dim=-1, keepdim=True)
        chosen.append(input_ids)
        chosen_logprobs.append(logprobs.gather(-1, input_ids))
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(input_ids)], dim=-1)
    return torch.cat(chosen, dim=-1), torch.cat(chosen_logprobs, dim=-1)
