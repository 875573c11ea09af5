"""POST /v1/chat/completions: messages (and tools) through the chat template, then the engine;
tool calls read out of the answer by vLLM's parsers (server.serving.tools)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from vllm import SamplingParams

from server.metrics import REQUESTS
from server.serving.bodies import Envelope, usage
from server.serving.engine_client import EngineClient, new_id
from server.serving.logprobs import chat_logprobs
from server.serving.protocol import ChatCompletionRequest, template_messages
from server.serving.tools import ToolCalling, ToolRequest, delta_body

TOOL_FIELDS = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls"}


@dataclass
class Prepared:
    """A validated chat request, ready for the engine."""

    model: str
    prompt_ids: list[int]
    params: SamplingParams
    tools: ToolRequest | None


class ChatHandler:
    def __init__(self, client: EngineClient, tools: ToolCalling) -> None:
        self.client = client
        self.tools = tools

    async def _prepare(self, request: ChatCompletionRequest) -> Prepared:
        weights = request.mixture.weights if request.mixture else None
        resolved = await self.client.mixture.resolve(request.model, weights)
        REQUESTS.labels(resolved.kind).inc()
        tools = None
        if request.tools is not None or request.tool_choice is not None:
            tools = self.tools.prepare(request.model_dump(include=TOOL_FIELDS, exclude_none=True))
        prompt_ids = self.client.tokenize_chat(
            template_messages(request.messages), tools=tools.template_tools if tools else None
        )
        max_tokens = self.client.check_length(prompt_ids, request.requested_max_tokens)
        params = request.sampling_params(max_tokens, resolved.vector, request.num_logprobs)
        if tools is not None:
            tools.adjust(params)
        return Prepared(resolved.model, prompt_ids, params, tools)

    def _message(self, prepared: Prepared, completion) -> tuple[dict, str | None]:
        if prepared.tools is None:
            return {"role": "assistant", "content": completion.text}, completion.finish_reason
        return prepared.tools.message(completion.text, completion.token_ids, completion.finish_reason)

    def _logprobs(self, request: ChatCompletionRequest, completion) -> dict | None:
        if not request.logprobs or not completion.token_ids:
            return None
        labels = self.client.labels(request.return_tokens_as_token_ids)
        return chat_logprobs(completion.token_ids, completion.logprobs, request.top_logprobs or 0, labels)

    async def complete(self, request: ChatCompletionRequest) -> dict:
        prepared = await self._prepare(request)
        envelope = Envelope(new_id("chatcmpl"), "chat.completion", prepared.model)
        output = await self.client.final(prepared.prompt_ids, prepared.params, envelope.id)
        choices = []
        for completion in sorted(output.outputs, key=lambda c: c.index):
            message, finish = self._message(prepared, completion)
            logprobs = self._logprobs(request, completion)
            choices.append(
                {"index": completion.index, "message": message, "logprobs": logprobs, "finish_reason": finish}
            )
        generated = sum(len(c.token_ids) for c in output.outputs)
        return envelope(choices, usage(len(prepared.prompt_ids), generated))

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        """Validates now (errors before any byte is sent), then yields chunks lazily."""
        return self._chunks(request, await self._prepare(request))

    async def _chunks(self, request: ChatCompletionRequest, prepared: Prepared) -> AsyncIterator[dict]:
        chunk = Envelope(new_id("chatcmpl"), "chat.completion.chunk", prepared.model)
        prompt_ids, tools = prepared.prompt_ids, prepared.tools
        generated = [0] * request.n
        parsers = [tools.parser() for _ in range(request.n)] if tools else []
        called = [False] * request.n

        def choice(index: int, delta: dict, logprobs: dict | None = None, finish: str | None = None) -> list[dict]:
            return [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]

        def running_usage() -> dict | None:
            return usage(len(prompt_ids), sum(generated)) if request.continuous_usage else None

        for index in range(request.n):
            yield chunk(choice(index, {"role": "assistant", "content": ""}), running_usage())
        async for output in self.client.generate(prompt_ids, prepared.params, chunk.id):
            for completion in output.outputs:
                index, finish = completion.index, completion.finish_reason
                generated[index] += len(completion.token_ids)
                logprobs = self._logprobs(request, completion)
                delta = {"content": completion.text} if completion.text else {}
                if tools is not None:
                    parsed = parsers[index].parse_delta(
                        completion.text,
                        list(completion.token_ids),
                        tools.request,
                        prompt_ids,
                        finished=finish is not None,
                    )
                    delta = delta_body(parsed) if parsed is not None else {}
                    called[index] = called[index] or bool(delta.get("tool_calls"))
                    finish = tools.finish_reason(called[index], finish)
                if delta or logprobs:
                    yield chunk(choice(index, delta or {"content": ""}, logprobs), running_usage())
                if finish is not None:
                    yield chunk(choice(index, {}, finish=finish), running_usage())
        if request.include_usage:
            yield chunk([], usage(len(prompt_ids), sum(generated)))
