"""Glue between the OpenAI handlers and the engine: tokenisation, context-length checks,
running one prompt, cancelling on client disconnect, and OpenAI logprob shapes."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from fastapi import Request
from vllm import SamplingParams
from vllm.exceptions import VLLMClientError
from vllm.outputs import RequestOutput

from mixer.needed import cache_salt, needed_components
from server.errors import APIError, to_api_error
from server.mixture import MixtureState

T = TypeVar("T")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class EngineClient:
    """The engine, the tokenizer it uses, and the mixture being served."""

    engine: Any  # vllm.v1.engine.async_llm.AsyncLLM
    tokenizer: Any  # transformers tokenizer loaded from the mixture's model folder
    mixture: MixtureState
    max_model_len: int

    def tokenize_chat(
        self,
        messages: list[dict[str, str]],
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        add_special_tokens: bool = False,
    ) -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
            )
        except Exception as err:  # jinja errors: the template refused these messages
            raise APIError(400, f"the chat template could not render these messages: {err}", param="messages") from None
        return self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]

    def tokenize_prompt(self, prompt: str | list[int], add_special_tokens: bool = True) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        return self.check_token_ids(prompt, "prompt")

    def check_token_ids(self, tokens: list[int], param: str) -> list[int]:
        vocab = len(self.tokenizer)
        bad = [t for t in tokens if not 0 <= t < vocab]
        if bad:
            raise APIError(400, f"token id {bad[0]} is out of range [0, {vocab})", param=param)
        return list(tokens)

    def check_length(self, prompt_ids: list[int], max_tokens: int | None) -> int:
        """The max_tokens to use: the request's, or all the room the context leaves."""
        room = self.max_model_len - len(prompt_ids)
        if room <= 0:
            raise APIError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens; "
                f"the prompt has {len(prompt_ids)} tokens.",
                param="messages" if max_tokens is None else "prompt",
            )
        if max_tokens is None:
            return room
        if max_tokens > room:
            raise APIError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens; you requested "
                f"{len(prompt_ids) + max_tokens} tokens ({len(prompt_ids)} in the prompt, {max_tokens} for the "
                "completion). Reduce the prompt or max_tokens.",
                param="max_tokens",
            )
        return max_tokens

    async def generate(
        self, prompt_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[RequestOutput]:
        """Outputs of one request; cancelling the iteration aborts it in the engine.

        The prompt is salted by the components the request needs (mixer.needed.cache_salt):
        a step skips the components no scheduled request needs, so a cached block's KV is
        valid only for requests that need what its writer needed."""
        prompt: dict[str, Any] = {"prompt_token_ids": prompt_ids}
        count = len(self.mixture.component_names)
        salt = cache_salt(needed_components(params.extra_args, count), count)
        if salt is not None:
            prompt["cache_salt"] = salt
        try:
            async for output in self.engine.generate(prompt, params, request_id):
                yield output
        except (ValueError, VLLMClientError) as err:  # vLLM's input validation
            raise to_api_error(err) from None

    async def final(self, prompt_ids: list[int], params: SamplingParams, request_id: str) -> RequestOutput:
        """The last output: with FINAL_ONLY output kind, the one complete result."""
        last = None
        async for output in self.generate(prompt_ids, params, request_id):
            last = output
        assert last is not None
        return last

    def labels(self, as_ids: bool) -> "TokenLabels":
        return TokenLabels(self.tokenizer, as_ids)


async def merge(streams: Sequence[AsyncIterator[T]]) -> AsyncIterator[tuple[int, T]]:
    """Interleave several async iterators as their items arrive, tagged with their index."""
    if len(streams) == 1:
        async for item in streams[0]:
            yield 0, item
        return
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index: int, stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((index, item))
            await queue.put((index, done))
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            await queue.put((index, err))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run work; if the client goes away first, cancel it (which aborts its engine requests)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise APIError(499, "client disconnected")
    return task.result()


# JSON has no -inf; like vLLM, report masked tokens with a very small finite number.
LOGPROB_FLOOR = -9999.0


def _finite(logprob: float) -> float:
    return max(logprob, LOGPROB_FLOOR)


@dataclass(frozen=True)
class TokenLabels:
    """How tokens are named in logprobs: their text, or "token_id:N" when the client asks
    (vLLM's `return_tokens_as_token_ids`, for clients that need exact ids)."""

    tokenizer: Any
    as_ids: bool = False

    def label(self, token_id: int, logprob=None) -> str:
        if self.as_ids:
            return f"token_id:{token_id}"
        if logprob is not None and logprob.decoded_token is not None:
            return logprob.decoded_token
        return self.tokenizer.decode([token_id])

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.tokenizer.all_special_ids)

    def width(self, token_id: int) -> int:
        """Characters the token adds to the returned text (special tokens add none)."""
        if token_id in self.special_ids:
            return 0
        return len(self.tokenizer.decode([token_id]))

    def entry(self, token_id: int, logprob) -> dict:
        token = self.label(token_id, logprob)
        return {"token": token, "logprob": _finite(logprob.logprob), "bytes": list(token.encode("utf-8"))}

    def ranked(self, candidates: dict, top: int) -> list:
        """The top-`top` (token_id, Logprob) pairs by rank (the sampled one may be extra)."""
        kept = [c for c in candidates.items() if c[1].rank is not None and c[1].rank <= top]
        return sorted(kept, key=lambda c: c[1].rank)


def chat_logprobs(token_ids: Sequence[int], logprobs: Sequence[dict] | None, top: int, labels: TokenLabels) -> dict:
    """OpenAI chat logprobs: {"content": [{token, logprob, bytes, top_logprobs}]}."""
    content = []
    for token_id, candidates in zip(token_ids, logprobs or [], strict=False):
        entry = labels.entry(token_id, candidates[token_id])
        entry["top_logprobs"] = [labels.entry(tid, lp) for tid, lp in labels.ranked(candidates, top)]
        content.append(entry)
    return {"content": content}


def completion_logprobs(
    token_ids: Sequence[int], logprobs: Sequence[dict | None], top: int, labels: TokenLabels, offset: int
) -> dict:
    """OpenAI completions logprobs: parallel arrays; a None entry (first prompt token) stays
    None. text_offset indexes the returned text, starting at `offset`."""
    tokens, token_logprobs, top_logprobs, offsets = [], [], [], []
    for token_id, candidates in zip(token_ids, logprobs, strict=True):
        if candidates is None:
            tokens.append(labels.label(token_id))
            token_logprobs.append(None)
            top_logprobs.append(None)
        else:
            tokens.append(labels.label(token_id, candidates[token_id]))
            token_logprobs.append(_finite(candidates[token_id].logprob))
            top_logprobs.append({labels.label(t, lp): _finite(lp.logprob) for t, lp in labels.ranked(candidates, top)})
        offsets.append(offset)
        offset += labels.width(token_id)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}
