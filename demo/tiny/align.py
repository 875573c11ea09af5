"""Aligning copies of the reference for one objective each: sample answers from the
reference, let the objective's judge pick a chosen and a rejected answer per prompt, and
train a copy by DPO on those pairs. Also the evaluation that shows each objective moved."""

import copy
import random
import time
from collections.abc import Callable

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from demo.dpo import dpo_loss, sequence_logprobs


def make_prompts(texts: list[str], seed: int) -> list[str]:
    """The first two to four words of each text: the model is asked to go on from there."""
    rng = random.Random(seed)
    prompts = []
    for text in texts:
        words = text.split()
        if len(words) >= 6:
            prompts.append(" ".join(words[: rng.randint(2, 4)]))
    return prompts


@torch.no_grad()
def sample(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    prompts: list[str],
    per_prompt: int,
    max_new_tokens: int,
    seed: int,
    batch: int = 256,
) -> list[list[list[int]]]:
    """Pure samples (temperature 1, no truncation); per prompt, per_prompt token lists, each
    ending with EOS unless it hit max_new_tokens."""
    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    flat = [p for p in prompts for _ in range(per_prompt)]
    outputs: list[list[int]] = []
    for i in range(0, len(flat), batch):
        encoded = tokenizer(flat[i : i + batch], return_tensors="pt", padding=True)
        generated = model.generate(
            **encoded,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )[:, encoded["input_ids"].shape[1] :]
        for row in generated.tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id) + 1]
            outputs.append([t for t in row if t != tokenizer.pad_token_id])
    return [outputs[i * per_prompt : (i + 1) * per_prompt] for i in range(len(prompts))]


def decode(tokenizer: PreTrainedTokenizerFast, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def preference_pairs(
    tokenizer: PreTrainedTokenizerFast,
    prompts: list[str],
    samples: list[list[list[int]]],
    judge: Callable[[str], float],
) -> list[tuple[str, list[int], list[int]]]:
    """Per prompt, the best and the worst sample by the judge, when the judge tells them apart."""
    pairs = []
    for prompt, answers in zip(prompts, samples, strict=True):
        scored = sorted(answers, key=lambda ids: judge(decode(tokenizer, ids)))
        worst, best = scored[0], scored[-1]
        if judge(decode(tokenizer, best)) > judge(decode(tokenizer, worst)):
            pairs.append((prompt, best, worst))
    return pairs


def _batch(tokenizer: PreTrainedTokenizerFast, prompt_answer: list[tuple[str, list[int]]]):
    """Right-padded (input_ids, attention_mask, response_mask) for prompt+answer rows."""
    rows, masks = [], []
    for prompt, answer in prompt_answer:
        prompt_ids = tokenizer(prompt)["input_ids"]
        rows.append(prompt_ids + answer)
        masks.append([0.0] * len(prompt_ids) + [1.0] * len(answer))
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    response = torch.tensor([m + [0.0] * (width - len(m)) for m in masks])
    return input_ids, attention, response


def train_dpo(
    reference: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    pairs: list[tuple[str, list[int], list[int]]],
    beta: float,
    lr: float,
    epochs: int,
    batch: int,
    seed: int,
    label: str,
) -> LlamaForCausalLM:
    """A copy of the reference trained by DPO on (prompt, chosen, rejected) pairs."""
    policy = copy.deepcopy(reference)
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    rng = random.Random(seed)
    start = time.time()
    steps = 0
    for epoch in range(epochs):
        order = pairs[:]
        rng.shuffle(order)
        for i in range(0, len(order), batch):
            chunk = order[i : i + batch]
            chosen = _batch(tokenizer, [(p, c) for p, c, _ in chunk])
            rejected = _batch(tokenizer, [(p, r) for p, _, r in chunk])
            with torch.no_grad():
                ref_chosen = sequence_logprobs(reference, *chosen)
                ref_rejected = sequence_logprobs(reference, *rejected)
            loss = dpo_loss(
                sequence_logprobs(policy, *chosen), sequence_logprobs(policy, *rejected), ref_chosen, ref_rejected, beta
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            steps += 1
        print(
            f"  dpo[{label}] epoch {epoch + 1}/{epochs} loss {loss.item():.3f} ({time.time() - start:.0f}s)", flush=True
        )
    policy.eval()
    return policy


def evaluate(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    prompts: list[str],
    judges: dict[str, Callable[[str], float]],
    per_prompt: int,
    max_new_tokens: int,
    seed: int,
) -> dict[str, float]:
    """Mean score of the model's samples on each objective."""
    answers = [
        decode(tokenizer, ids)
        for group in sample(model, tokenizer, prompts, per_prompt, max_new_tokens, seed)
        for ids in group
    ]
    return {name: sum(map(judge, answers)) / len(answers) for name, judge in judges.items()}
