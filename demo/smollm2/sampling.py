"""Answers to chat prompts from a transformers model, batched, with their log-probs.

The prompts are rendered with the model's chat template exactly as the server renders a
one-message chat, so the policies are trained on the token sequences they later serve. At
temperature 1 with no truncation the samples come from the model itself, and the sampling
pass also yields log pi(answer | prompt): DPO needs the reference's, and gets them for free.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Answer:
    prompt_ids: list[int]
    tokens: list[int]  # the answer, with the end-of-turn token if it ended
    ended: bool  # False: cut at max_new_tokens
    logprob: float  # sum of log p(token | prefix) at temperature 1 under the sampling model


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """A one-message chat, rendered and tokenised as the server does (server/generation.py)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def sample_answers(
    model,
    tokenizer,
    prompts: list[str],
    per_prompt: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    batch: int = 64,
    progress=None,
    with_logprobs: bool = True,
) -> list[list[Answer]]:
    """per_prompt answers to each prompt; progress(answers_done) after each batch.

    Without with_logprobs an answer's logprob is NaN (saves holding the logits of a batch)."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    flat = [chat_prompt_ids(tokenizer, p) for p in prompts for _ in range(per_prompt)]
    torch.manual_seed(seed)
    answers: list[Answer] = []
    for start in range(0, len(flat), batch):
        rows = flat[start : start + batch]
        width = max(map(len, rows))
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=eos,
            output_logits=with_logprobs,
            return_dict_in_generate=True,
        )
        generated = out.sequences[:, width:]  # (B, T)
        if with_logprobs:
            logits = torch.stack(out.logits, dim=1).float()  # (B, T, V), raw: before temperature
            token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, generated[..., None]).squeeze(-1)  # (B, T)
        else:
            token_logprobs = torch.full(generated.shape, float("nan"))
        for prompt_ids, row, row_logprobs in zip(rows, generated.tolist(), token_logprobs, strict=True):
            ended = eos in row
            length = row.index(eos) + 1 if ended else len(row)
            answers.append(Answer(prompt_ids, row[:length], ended, float(row_logprobs[:length].sum())))
        if progress is not None:
            progress(len(answers))
    return [answers[i * per_prompt : (i + 1) * per_prompt] for i in range(len(prompts))]


def answer_text(tokenizer, answer: Answer) -> str:
    return tokenizer.decode(answer.tokens, skip_special_tokens=True).strip()
