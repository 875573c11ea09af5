"""POST /v1/chat/completions: messages through the chat template, then the engine."""

from collections.abc import AsyncIterator

from server.metrics import REQUESTS
from server.serving.bodies import Envelope, usage
from server.serving.engine_client import EngineClient, new_id
from server.serving.logprobs import chat_logprobs
from server.serving.protocol import ChatCompletionRequest, template_messages


class ChatHandler:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    def _prepare(self, request: ChatCompletionRequest):
        resolved = self.client.mixture.resolve(request.model, request.mixture.weights if request.mixture else None)
        REQUESTS.labels(resolved.kind).inc()
        prompt_ids = self.client.tokenize_chat(template_messages(request.messages))
        max_tokens = self.client.check_length(prompt_ids, request.requested_max_tokens)
        params = request.sampling_params(max_tokens, resolved.vector, request.num_logprobs)
        return resolved.model, prompt_ids, params

    def _logprobs(self, request: ChatCompletionRequest, completion) -> dict | None:
        if not request.logprobs or not completion.token_ids:
            return None
        labels = self.client.labels(request.return_tokens_as_token_ids)
        return chat_logprobs(completion.token_ids, completion.logprobs, request.top_logprobs or 0, labels)

    async def complete(self, request: ChatCompletionRequest) -> dict:
        model, prompt_ids, params = self._prepare(request)
        envelope = Envelope(new_id("chatcmpl"), "chat.completion", model)
        output = await self.client.final(prompt_ids, params, envelope.id)
        choices = [
            {
                "index": completion.index,
                "message": {"role": "assistant", "content": completion.text},
                "logprobs": self._logprobs(request, completion),
                "finish_reason": completion.finish_reason,
            }
            for completion in sorted(output.outputs, key=lambda c: c.index)
        ]
        generated = sum(len(c.token_ids) for c in output.outputs)
        return envelope(choices, usage(len(prompt_ids), generated))

    def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        """Validates now (errors before any byte is sent), then yields chunks lazily."""
        model, prompt_ids, params = self._prepare(request)
        return self._chunks(request, model, prompt_ids, params)

    async def _chunks(
        self, request: ChatCompletionRequest, model: str, prompt_ids: list[int], params
    ) -> AsyncIterator[dict]:
        chunk = Envelope(new_id("chatcmpl"), "chat.completion.chunk", model)
        generated = [0] * request.n

        def choice(index: int, delta: dict, logprobs: dict | None = None, finish: str | None = None) -> list[dict]:
            return [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]

        def running_usage() -> dict | None:
            return usage(len(prompt_ids), sum(generated)) if request.continuous_usage else None

        for index in range(request.n):
            yield chunk(choice(index, {"role": "assistant", "content": ""}), running_usage())
        async for output in self.client.generate(prompt_ids, params, chunk.id):
            for completion in output.outputs:
                generated[completion.index] += len(completion.token_ids)
                logprobs = self._logprobs(request, completion)
                if completion.text or logprobs:
                    yield chunk(choice(completion.index, {"content": completion.text}, logprobs), running_usage())
                if completion.finish_reason is not None:
                    yield chunk(choice(completion.index, {}, finish=completion.finish_reason), running_usage())
        if request.include_usage:
            yield chunk([], usage(len(prompt_ids), sum(generated)))
