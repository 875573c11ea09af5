"""POST /v1/completions: one engine request per prompt, choices numbered across prompts."""

import time
from collections.abc import AsyncIterator

from vllm.outputs import RequestOutput

from server.chat import _usage
from server.generation import EngineClient, completion_logprobs, merge, new_id
from server.protocol import CompletionRequest


class CompletionHandler:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    def _prepare(self, request: CompletionRequest):
        resolved = self.client.mixture.resolve(request.model, request.mixture.weights if request.mixture else None)
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

    def _choice(self, request: CompletionRequest, output: RequestOutput, completion, index: int, echo: bool) -> dict:
        text, logprobs = "", None
        if echo:
            text, logprobs = self._echo_part(request, output)
        generate = request.max_tokens > 0
        if generate:
            offset = len(text)
            text += completion.text
            if request.logprobs is not None:
                labels = self.client.labels(request.return_tokens_as_token_ids)
                generated = completion_logprobs(
                    completion.token_ids, completion.logprobs, request.logprobs, labels, offset
                )
                logprobs = generated if logprobs is None else {k: logprobs[k] + generated[k] for k in generated}
        finish = completion.finish_reason if generate else "length"
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}

    async def complete(self, request: CompletionRequest) -> dict:
        model, prompts, params = self._prepare(request)
        request_id = new_id("cmpl")
        streams = [
            self.client.generate(p, sp, f"{request_id}-{i}")
            for i, (p, sp) in enumerate(zip(prompts, params, strict=True))
        ]
        finals: dict[int, RequestOutput] = {}
        async for index, output in merge(streams):
            finals[index] = output
        choices, generated = [], 0
        for prompt_index in range(len(prompts)):
            output = finals[prompt_index]
            for completion in sorted(output.outputs, key=lambda c: c.index):
                choice_index = prompt_index * request.n + completion.index
                choices.append(self._choice(request, output, completion, choice_index, request.echo))
                generated += len(completion.token_ids) if request.max_tokens > 0 else 0
        return {
            "id": request_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": _usage(sum(map(len, prompts)), generated),
        }

    def stream(self, request: CompletionRequest) -> AsyncIterator[dict]:
        model, prompts, params = self._prepare(request)
        return self._chunks(request, model, prompts, params)

    async def _chunks(self, request: CompletionRequest, model: str, prompts, params) -> AsyncIterator[dict]:
        request_id = new_id("cmpl")
        created = int(time.time())
        streams = [
            self.client.generate(p, sp, f"{request_id}-{i}")
            for i, (p, sp) in enumerate(zip(prompts, params, strict=True))
        ]
        echoed: set[int] = set()
        offsets: dict[int, int] = {}
        generated = 0

        def chunk(choices: list[dict], usage: dict | None = None) -> dict:
            body = {
                "id": request_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": choices,
            }
            if usage is not None:
                body["usage"] = usage
            return body

        async for prompt_index, output in merge(streams):
            for completion in output.outputs:
                index = prompt_index * request.n + completion.index
                text, logprobs = "", None
                if request.echo and index not in echoed:
                    echoed.add(index)
                    text, logprobs = self._echo_part(request, output)
                    offsets[index] = len(text)
                offset = offsets.get(index, 0)
                text += completion.text
                generated += len(completion.token_ids)
                if request.logprobs is not None and completion.token_ids:
                    labels = self.client.labels(request.return_tokens_as_token_ids)
                    part = completion_logprobs(
                        completion.token_ids, completion.logprobs, request.logprobs, labels, offset
                    )
                    logprobs = part if logprobs is None else {k: logprobs[k] + part[k] for k in part}
                offsets[index] = offset + len(completion.text)
                usage = _usage(sum(map(len, prompts)), generated) if request.continuous_usage else None
                yield chunk(
                    [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": completion.finish_reason}],
                    usage,
                )
        if request.include_usage:
            yield chunk([], _usage(sum(map(len, prompts)), generated))
