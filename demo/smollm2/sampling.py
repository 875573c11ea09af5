"""Answers to chat prompts from a vLLM engine, batched, with their log-probs.

The prompts are rendered with the model's chat template exactly as the server renders a
one-message chat, so the policies are trained on the token sequences they later serve. At
temperature 1 with no truncation the samples come from the model itself, and the sampling
pass also yields log pi(answer | prompt): DPO needs the reference's, and gets them for free.
"""

from dataclasses import dataclass


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


def answer_text(tokenizer, answer: Answer) -> str:
    return tokenizer.decode(answer.tokens, skip_special_tokens=True).strip()


def sample_with_vllm(
    llm,
    tokenizer,
    prompts: list[str],
    per_prompt: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    extra_args: dict | None = None,
    cache_salt: str | None = None,
) -> list[list[Answer]]:
    """per_prompt answers to each prompt from a vLLM engine (server.engine's offline engines),
    about twice as fast on 2 cores as transformers' generate. Every answer has its own seed
    (seed * 100000 + its index), the same for every model asked; an answer's log-prob is the
    sum of vLLM's raw log-probs of its tokens (at temperature 1: the model's own). extra_args and cache_salt
    choose a mixture engine's component (mixer.needed)."""
    from vllm import SamplingParams

    eos = tokenizer.eos_token_id
    flat = [chat_prompt_ids(tokenizer, p) for p in prompts for _ in range(per_prompt)]
    params = [
        SamplingParams(
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_tokens=max_new_tokens,
            seed=seed * 100_000 + i,
            logprobs=0,
            detokenize=False,
            extra_args=extra_args,
        )
        for i in range(len(flat))
    ]
    salt = {"cache_salt": cache_salt} if cache_salt else {}
    outputs = llm.generate([{"prompt_token_ids": ids, **salt} for ids in flat], params, use_tqdm=True)
    answers = []
    for prompt_ids, output in zip(flat, outputs, strict=True):
        completion = output.outputs[0]
        tokens = list(completion.token_ids)
        ended = bool(tokens) and tokens[-1] == eos
        logprob = sum(step[token].logprob for step, token in zip(completion.logprobs, tokens, strict=True))
        answers.append(Answer(prompt_ids, tokens, ended, logprob))
    return [answers[i * per_prompt : (i + 1) * per_prompt] for i in range(len(prompts))]
