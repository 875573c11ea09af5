"""POST /v1/chat/completions: messages through the chat template, then the engine."""

import time
from collections.abc import AsyncIterator

from server.generation import EngineClient, chat_logprobs, new_id
from server.protocol import ChatCompletionRequest


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ChatHandler:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    def _prepare(self, request: ChatCompletionRequest):
        resolved = self.client.mixture.resolve(request.model, request.mixture.weights if request.mixture else None)
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in request.messages
        ]
        prompt_ids = self.client.tokenize_chat(messages)
        max_tokens = self.client.check_length(prompt_ids, request.requested_max_tokens)
        params = request.sampling_params(max_tokens, resolved.vector, request.num_logprobs)
        return resolved.model, prompt_ids, params

    async def complete(self, request: ChatCompletionRequest) -> dict:
        model, prompt_ids, params = self._prepare(request)
        request_id = new_id("chatcmpl")
        labels = self.client.labels(request.return_tokens_as_token_ids)
        output = await self.client.final(prompt_ids, params, request_id)
        choices = []
        for completion in sorted(output.outputs, key=lambda c: c.index):
            logprobs = None
            if request.logprobs:
                logprobs = chat_logprobs(completion.token_ids, completion.logprobs, request.top_logprobs or 0, labels)
            choices.append(
                {
                    "index": completion.index,
                    "message": {"role": "assistant", "content": completion.text},
                    "logprobs": logprobs,
                    "finish_reason": completion.finish_reason,
                }
            )
        generated = sum(len(c.token_ids) for c in output.outputs)
        return {
            "id": request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": _usage(len(prompt_ids), generated),
        }

    def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        """Validates now (errors before any byte is sent), then yields chunks lazily."""
        model, prompt_ids, params = self._prepare(request)
        return self._chunks(request, model, prompt_ids, params)

    async def _chunks(
        self, request: ChatCompletionRequest, model: str, prompt_ids: list[int], params
    ) -> AsyncIterator[dict]:
        request_id = new_id("chatcmpl")
        labels = self.client.labels(request.return_tokens_as_token_ids)
        created = int(time.time())
        generated = [0] * request.n

        def chunk(choices: list[dict], usage: dict | None = None) -> dict:
            body = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }
            if usage is not None:
                body["usage"] = usage
            return body

        def running_usage() -> dict | None:
            return _usage(len(prompt_ids), sum(generated)) if request.continuous_usage else None

        for index in range(request.n):
            first = {
                "index": index,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
            yield chunk([first], running_usage())
        async for output in self.client.generate(prompt_ids, params, request_id):
            for completion in output.outputs:
                generated[completion.index] += len(completion.token_ids)
                logprobs = None
                if request.logprobs and completion.token_ids:
                    logprobs = chat_logprobs(
                        completion.token_ids, completion.logprobs, request.top_logprobs or 0, labels
                    )
                if completion.text or logprobs:
                    delta = {
                        "index": completion.index,
                        "delta": {"content": completion.text},
                        "logprobs": logprobs,
                        "finish_reason": None,
                    }
                    yield chunk([delta], running_usage())
                if completion.finish_reason is not None:
                    end = {
                        "index": completion.index,
                        "delta": {},
                        "logprobs": None,
                        "finish_reason": completion.finish_reason,
                    }
                    yield chunk([end], running_usage())
        if request.include_usage:
            yield chunk([], _usage(len(prompt_ids), sum(generated)))
