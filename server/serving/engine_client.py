"""Glue between the OpenAI handlers and the engine: tokenisation, context-length checks,
running one prompt (salted by the components it needs), and interleaving several."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from transformers import PreTrainedTokenizerBase
from vllm import SamplingParams
from vllm.outputs import RequestOutput
from vllm.renderers.chat_utils import parse_chat_messages
from vllm.renderers.hf import safe_apply_chat_template
from vllm.v1.engine.async_llm import AsyncLLM

from mixer.needed import cache_salt, needed_components
from server.exceptions import InvalidRequest
from server.serving.logprobs import TokenLabels
from server.serving.mixture import MixtureState

T = TypeVar("T")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class EngineClient:
    """The engine, the tokenizer it uses, and the mixture being served."""

    engine: AsyncLLM
    tokenizer: PreTrainedTokenizerBase  # loaded from the mixture's model folder
    mixture: MixtureState
    max_model_len: int

    def tokenize_chat(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        add_special_tokens: bool = False,
        tools: list[dict] | None = None,
    ) -> list[int]:
        """Messages (OpenAI's shape: text parts, tool calls, tool results) through vLLM's own
        chat handling (its message parsing and its guarded template call, which also renders
        `tools` for templates that take them), then the tokenizer."""
        model_config = self.engine.model_config
        try:
            conversation, _, _ = parse_chat_messages(messages, model_config, content_format="string")
            text = safe_apply_chat_template(
                model_config,
                self.tokenizer,
                conversation,
                tools=tools,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
            )
        except Exception as err:  # jinja and vLLM's message checks: the template refused these messages
            raise InvalidRequest(
                f"the chat template could not render these messages: {err}", param="messages"
            ) from None
        return self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]

    def tokenize_prompt(self, prompt: str | list[int], add_special_tokens: bool = True) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        return self.check_token_ids(prompt, "prompt")

    def check_token_ids(self, tokens: list[int], param: str) -> list[int]:
        vocab = len(self.tokenizer)
        bad = [t for t in tokens if not 0 <= t < vocab]
        if bad:
            raise InvalidRequest(f"token id {bad[0]} is out of range [0, {vocab})", param=param)
        return list(tokens)

    def check_length(self, prompt_ids: list[int], max_tokens: int | None) -> int:
        """The max_tokens to use: the request's, or all the room the context leaves."""
        room = self.max_model_len - len(prompt_ids)
        if room <= 0:
            raise InvalidRequest(
                f"This model's maximum context length is {self.max_model_len} tokens; "
                f"the prompt has {len(prompt_ids)} tokens.",
                param="messages" if max_tokens is None else "prompt",
            )
        if max_tokens is None:
            return room
        if max_tokens > room:
            raise InvalidRequest(
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
        async for output in self.engine.generate(prompt, params, request_id):
            yield output

    async def final(self, prompt_ids: list[int], params: SamplingParams, request_id: str) -> RequestOutput:
        """The last output: with FINAL_ONLY output kind, the one complete result."""
        last = None
        async for output in self.generate(prompt_ids, params, request_id):
            last = output
        assert last is not None
        return last

    def labels(self, as_ids: bool) -> TokenLabels:
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
