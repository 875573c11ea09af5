"""POST /v1/completions: one engine request per prompt, choices numbered across prompts."""

from collections.abc import AsyncIterator

from vllm.outputs import RequestOutput

from server.metrics import REQUESTS
from server.serving.bodies import Envelope, usage
from server.serving.engine_client import EngineClient, merge, new_id
from server.serving.logprobs import completion_logprobs
from server.serving.protocol import CompletionRequest


class CompletionHandler:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    async def _prepare(self, request: CompletionRequest):
        weights = request.mixture.weights if request.mixture else None
        resolved = await self.client.mixture.resolve(request.model, weights)
        REQUESTS.labels(resolved.kind).inc()
        prompts = [self.client.tokenize_prompt(p) for p in request.prompts()]
        # The engine always generates at least one token; echo with max_tokens=0 drops it.
        max_tokens = max(1, request.max_tokens)
        params = []
        for prompt_ids in prompts:
            self.client.check_length(prompt_ids, max_tokens)
            prompt_logprobs = request.logprobs if request.echo and request.logprobs is not None else None
            params.append(request.sampling_params(max_tokens, resolved.vector, request.logprobs, prompt_logprobs))
        return resolved.model, prompts, params

    def _echo_part(self, request: CompletionRequest, output: RequestOutput) -> tuple[str, dict | None]:
        """The prompt's text and (with logprobs) its token logprobs, first entry None."""
        text = self.client.tokenizer.decode(output.prompt_token_ids, skip_special_tokens=True)
        if request.logprobs is None:
            return text, None
        prompt_logprobs = output.prompt_logprobs or [None] * len(output.prompt_token_ids)
        labels = self.client.labels(request.return_tokens_as_token_ids)
        return text, completion_logprobs(output.prompt_token_ids, prompt_logprobs, request.logprobs, labels, 0)

    def _piece(
        self, request: CompletionRequest, output: RequestOutput, completion, offset: int, with_prompt: bool
    ) -> tuple[str, dict | None]:
        """Text and logprobs of one choice's new part: the prompt first when it is echoed now,
        then what was generated (nothing for echo with max_tokens=0). `offset` is where the
        part starts in the choice's whole text."""
        text, logprobs = self._echo_part(request, output) if with_prompt else ("", None)
        if request.max_tokens == 0:
            return text, logprobs
        start = offset + len(text)
        text += completion.text
        if request.logprobs is not None and completion.token_ids:
            labels = self.client.labels(request.return_tokens_as_token_ids)
            part = completion_logprobs(completion.token_ids, completion.logprobs, request.logprobs, labels, start)
            logprobs = part if logprobs is None else {k: logprobs[k] + part[k] for k in part}
        return text, logprobs

    def _streams(self, request_id: str, prompts: list[list[int]], params: list) -> list:
        return [
            self.client.generate(p, sp, f"{request_id}-{i}")
            for i, (p, sp) in enumerate(zip(prompts, params, strict=True))
        ]

    async def complete(self, request: CompletionRequest) -> dict:
        model, prompts, params = await self._prepare(request)
        envelope = Envelope(new_id("cmpl"), "text_completion", model)
        finals: dict[int, RequestOutput] = {}
        async for index, output in merge(self._streams(envelope.id, prompts, params)):
            finals[index] = output
        choices, generated = [], 0
        for prompt_index in range(len(prompts)):
            output = finals[prompt_index]
            for completion in sorted(output.outputs, key=lambda c: c.index):
                text, logprobs = self._piece(request, output, completion, 0, request.echo)
                finish = completion.finish_reason if request.max_tokens > 0 else "length"
                index = prompt_index * request.n + completion.index
                choices.append({"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish})
                generated += len(completion.token_ids) if request.max_tokens > 0 else 0
        return envelope(choices, usage(sum(map(len, prompts)), generated))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[dict]:
        """Validates now (errors before any byte is sent), then yields chunks lazily."""
        model, prompts, params = await self._prepare(request)
        return self._chunks(request, model, prompts, params)

    async def _chunks(self, request: CompletionRequest, model: str, prompts, params) -> AsyncIterator[dict]:
        chunk = Envelope(new_id("cmpl"), "text_completion", model)
        offsets: dict[int, int] = {}  # choice index -> characters sent so far
        generated = 0
        async for prompt_index, output in merge(self._streams(chunk.id, prompts, params)):
            for completion in output.outputs:
                index = prompt_index * request.n + completion.index
                first = index not in offsets
                text, logprobs = self._piece(request, output, completion, offsets.get(index, 0), request.echo and first)
                offsets[index] = offsets.get(index, 0) + len(text)
                generated += len(completion.token_ids)
                running = usage(sum(map(len, prompts)), generated) if request.continuous_usage else None
                choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": completion.finish_reason}
                yield chunk([choice], running)
        if request.include_usage:
            yield chunk([], usage(sum(map(len, prompts)), generated))
