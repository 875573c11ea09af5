"""POST /v1/responses: OpenAI's Responses API, served as the chat request it amounts to.

The request becomes a chat completion (responses_protocol.chat_body), run by the chat handler
with everything chat has (the mixture's weights, tools and their parsers, structured output);
its answer or its stream of chunks is then put in the Responses shapes the openai package and
the openai-agents SDK parse: output items (a message with output_text, function calls), usage
in input/output tokens, and for streams the typed events from `response.created` to
`response.completed`. Nothing is stored: `previous_response_id` and the like are refused.
"""

import time
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from typing import Any

from server.exceptions import Unsupported
from server.serving.chat import ChatHandler
from server.serving.protocol import ChatCompletionRequest
from server.serving.responses_protocol import ResponsesRequest

STORED_ONLY = {
    "previous_response_id": "previous_response_id needs stored responses",
    "conversation": "conversation needs stored conversations",
    "background": "background responses need stored responses",
}


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def text_item(text: str, status: str = "completed", item_id: str | None = None) -> dict:
    return {
        "type": "message",
        "id": item_id or _id("msg"),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def call_item(call_id: str, name: str, arguments: str, status: str = "completed", item_id: str | None = None) -> dict:
    return {
        "type": "function_call",
        "id": item_id or _id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


@dataclass
class ResponseShell:
    """The fields of a response that do not depend on the answer."""

    request: ResponsesRequest
    model: str
    id: str = field(default_factory=lambda: _id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def __call__(self, output: list[dict], usage: dict | None, finish: str | None, status: str | None = None) -> dict:
        request = self.request
        incomplete = finish == "length"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status or ("incomplete" if incomplete else "completed"),
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "error": None,
            "model": self.model,
            "instructions": request.instructions,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "tool_choice": self._tool_choice(),
            "tools": [tool.model_dump(exclude_none=True) for tool in request.tools or []],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_output_tokens,
            "previous_response_id": None,
            "reasoning": None,
            "store": False,
            "text": {"format": request.text.format.model_dump(by_alias=True, exclude_none=True)}
            if request.text
            else {"format": {"type": "text"}},
            "truncation": "disabled",
            "metadata": request.metadata or {},
            "user": request.user,
            "usage": usage,
        }

    def _tool_choice(self) -> str | dict:
        choice = self.request.tool_choice
        if choice is None:
            return "auto"
        return choice if isinstance(choice, str) else choice.model_dump()


def response_usage(chat_usage: dict | None) -> dict | None:
    if chat_usage is None:
        return None
    return {
        "input_tokens": chat_usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": chat_usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": chat_usage["total_tokens"],
    }


class ResponsesHandler:
    def __init__(self, chat: ChatHandler) -> None:
        self.chat = chat

    def _chat_request(self, request: ResponsesRequest, stream: bool) -> ChatCompletionRequest:
        for name, reason in STORED_ONLY.items():
            if getattr(request, name) not in (None, False):
                raise Unsupported(
                    f"{reason}, which this server does not keep: send the whole conversation as input",
                    param=name,
                )
        body = request.chat_body()
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return ChatCompletionRequest.model_validate(body)

    async def complete(self, request: ResponsesRequest) -> dict:
        completion = await self.chat.complete(self._chat_request(request, stream=False))
        choice = completion["choices"][0]
        message = choice["message"]
        output = (
            [text_item(message.get("content") or "")] if message.get("content") or not message.get("tool_calls") else []
        )
        for call in message.get("tool_calls") or []:
            output.append(call_item(call["id"], call["function"]["name"], call["function"]["arguments"]))
        shell = ResponseShell(request, completion["model"])
        return shell(output, response_usage(completion.get("usage")), choice["finish_reason"])

    async def stream(self, request: ResponsesRequest) -> AsyncIterator[dict]:
        """Validates now (errors before any byte is sent), then yields events lazily."""
        chat_request = self._chat_request(request, stream=True)
        chunks = await self.chat.stream(chat_request)
        return Events(ResponseShell(request, chat_request.model)).stream(chunks)


class Events:
    """Chat chunks to the Responses API's streamed events, each numbered in sequence."""

    def __init__(self, shell: ResponseShell) -> None:
        self.shell = shell
        self.sequence = 0
        self.output: list[dict] = []  # finished items
        self.text: dict | None = None  # the message being written: {id, text}
        self.calls: dict[int, dict] = {}  # tool-call index -> {id, call_id, name, arguments, output_index}

    def event(self, kind: str, **fields: Any) -> dict:
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1, **fields}

    async def stream(self, chunks: AsyncIterator[dict]) -> AsyncIterator[dict]:
        shell = self.shell
        yield self.event("response.created", response=shell([], None, None, status="in_progress"))
        yield self.event("response.in_progress", response=shell([], None, None, status="in_progress"))
        usage, finish = None, None
        async for chunk in chunks:
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                delta = choice["delta"]
                if delta.get("content"):
                    for event in self._text(delta["content"]):
                        yield event
                for piece in delta.get("tool_calls") or []:
                    for event in self._call(piece):
                        yield event
                finish = choice["finish_reason"] or finish
        if not self.output and self.text is None and not self.calls:  # an empty answer is an empty message
            for event in self._open_text():
                yield event
        for event in self._close():
            yield event
        final = shell(self.output, response_usage(usage), finish)
        yield self.event(
            "response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final
        )

    def _index(self) -> int:
        return len(self.output) + (self.text is not None) + len(self.calls)

    def _open_text(self) -> Generator[dict, None, dict]:
        """The events that open the message being written; returns it ({id, text, output_index})."""
        text: dict[str, Any] = {"id": _id("msg"), "text": "", "output_index": self._index()}
        self.text = text
        item = text_item("", status="in_progress", item_id=text["id"]) | {"content": []}
        yield self.event("response.output_item.added", output_index=text["output_index"], item=item)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield self.event("response.content_part.added", **self._at(text), content_index=0, part=part)
        return text

    def _text(self, delta: str):
        text = self.text
        if text is None:
            text = yield from self._open_text()
        text["text"] += delta
        yield self.event("response.output_text.delta", **self._at(text), content_index=0, delta=delta, logprobs=[])

    def _call(self, piece: dict):
        function = piece.get("function") or {}
        call = self.calls.get(piece["index"])
        if call is None:
            yield from self._close_text()
            call = {"id": _id("fc"), "call_id": piece.get("id") or _id("call"), "name": function.get("name") or ""}
            call |= {"arguments": "", "output_index": self._index()}
            self.calls[piece["index"]] = call
            item = call_item(call["call_id"], call["name"], "", status="in_progress", item_id=call["id"])
            yield self.event("response.output_item.added", output_index=call["output_index"], item=item)
        if function.get("arguments"):
            call["arguments"] += function["arguments"]
            yield self.event("response.function_call_arguments.delta", **self._at(call), delta=function["arguments"])

    @staticmethod
    def _at(item: dict) -> dict:
        return {"item_id": item["id"], "output_index": item["output_index"]}

    def _close_text(self):
        text = self.text
        if text is None:
            return
        self.text = None
        part = {"type": "output_text", "text": text["text"], "annotations": [], "logprobs": []}
        yield self.event("response.output_text.done", **self._at(text), content_index=0, text=text["text"], logprobs=[])
        yield self.event("response.content_part.done", **self._at(text), content_index=0, part=part)
        item = text_item(text["text"], item_id=text["id"])
        self.output.append(item)
        yield self.event("response.output_item.done", output_index=text["output_index"], item=item)

    def _close(self):
        yield from self._close_text()
        for index in sorted(self.calls):
            call = self.calls[index]
            yield self.event(
                "response.function_call_arguments.done",
                **self._at(call),
                name=call["name"],
                arguments=call["arguments"],
            )
            item = call_item(call["call_id"], call["name"], call["arguments"], item_id=call["id"])
            self.output.append(item)
            yield self.event("response.output_item.done", output_index=call["output_index"], item=item)
        self.calls = {}
