"""Tool calls, with vLLM's own pieces rather than ours: its request model checks `tools` and
`tool_choice` (the same errors vLLM serve gives), its tool-call parsers read calls out of the
mixture's text, and `required` or a named function become a JSON schema for its structured
outputs, so the mixture can only answer with a valid call.

- `auto` (the default when tools are given) needs a parser that knows the components' call
  syntax, named in the manifest (`tool_call_parser`, one of vLLM's: hermes, llama3_json, ...),
  as vLLM serve needs `--tool-call-parser`; without one it is refused.
- `required` and a named function need no parser: a JSON schema forces the output and vLLM's
  JSON paths read it (a list of {name, parameters}, or the named function's arguments). With
  a parser whose syntax xgrammar knows (hermes...), vLLM forces that syntax instead (its
  "structural tags") and the parser reads it; how much of a call is pinned is vLLM's
  `--tool-strict-level` (the manifest's `tool_strict_level`): by default the call itself, and
  the arguments of tools marked `strict: true`, as OpenAI's `strict` means.
- `none` passes the tools to the chat template, as vLLM does, and parses nothing.

A request's tools go to the chat template, which renders them for the components (templates
that know no tools leave them out). The parser is stateful, so each choice has its own.
"""

from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase
from vllm.entrypoints.generate.base.protocol import DeltaMessage
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest as VllmChatRequest
from vllm.parser.abstract_parser import DelegatingParser, Parser
from vllm.parser.parser_manager import ParserManager
from vllm.renderers.chat_utils import make_tool_call_id
from vllm.sampling_params import SamplingParams
from vllm.tool_parsers import ToolParser

from server.exceptions import InvalidRequest


class ForcedCallsParser(DelegatingParser):
    """Reads forced calls only (`required`, a named function): vLLM's JSON paths, which run
    whatever the tool parser is. The base ToolParser stands in where the manifest names none;
    `auto`, which would need its syntax, is refused before a parser is made."""

    tool_parser_cls = ToolParser


@dataclass
class ToolRequest:
    """The tools of one chat request, as vLLM's parsers read them."""

    request: VllmChatRequest  # vLLM's view of the request: tools, tool_choice, messages
    parser_cls: type[Parser]
    auto: bool  # the manifest names a parser: it reads calls (vLLM's enable_auto_tools)
    tokenizer: PreTrainedTokenizerBase

    @property
    def template_tools(self) -> list[dict]:
        """The tools as chat templates take them."""
        return [tool.model_dump(exclude_none=True) for tool in self.request.tools or []]

    def adjust(self, params: SamplingParams) -> None:
        """What the parser asks of the engine request (vLLM's `adjust_request`): a forced call's
        JSON schema as its structured output (replacing any other constraint, as in vLLM), and
        special tokens kept in the text where a parser's call markers are special tokens."""
        adjusted = self.parser().adjust_request(self.request.model_copy())
        params.skip_special_tokens = adjusted.skip_special_tokens
        if adjusted.structured_outputs is not None:
            params.structured_outputs = adjusted.structured_outputs

    def parser(self) -> Parser:
        """A fresh parser (they keep state while streaming): one per choice."""
        return self.parser_cls(self.tokenizer, self.request.tools)

    def finish_reason(self, called: bool, finish_reason: str | None) -> str | None:
        """OpenAI's: "tool_calls" when the model chose to call (auto) or had to (required),
        "stop" for a named function."""
        if finish_reason == "stop" and called and self.request.tool_choice in ("auto", "required"):
            return "tool_calls"
        return finish_reason

    def message(self, text: str, token_ids, finish_reason: str | None) -> tuple[dict, str | None]:
        """The assistant message of a whole answer (content and tool calls) and its finish reason."""
        _, content, calls = self.parser().parse(text, self.request, self.auto, token_ids)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["content"] = content or None
            message["tool_calls"] = [
                {"id": call.id or make_tool_call_id(), "type": "function", "function": call.model_dump()}
                for call in calls
            ]
        return message, self.finish_reason(bool(calls), finish_reason)


def delta_body(delta: DeltaMessage) -> dict:
    """A streamed delta as the openai package parses it: content and/or tool-call pieces."""
    return delta.model_dump(exclude_none=True, exclude={"reasoning"})


class ToolCalling:
    """What the server knows about tool calls: the manifest's parser, if any."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, parser_name: str | None, strict_level: str = "auto") -> None:
        self.tokenizer = tokenizer
        self.auto_parser = (
            ParserManager.get_parser(
                tool_parser_name=parser_name,
                enable_auto_tools=True,
                tool_strict_level=strict_level,
                tokenizer=tokenizer,
            )
            if parser_name
            else None
        )

    def prepare(self, body: dict) -> ToolRequest | None:
        """vLLM's view of a chat request's tools (its checks of tools and tool_choice apply);
        None for a request without tools."""
        request = VllmChatRequest.model_validate(body)
        if not request.tools:
            return None
        if request.tool_choice in ("auto", None) and self.auto_parser is None:
            raise InvalidRequest(
                "tool_choice 'auto' needs a tool-call parser, and this mixture's manifest names none "
                "(tool_call_parser); use tool_choice 'required' or a named function, or 'none'",
                param="tool_choice",
            )
        if self.auto_parser is None:
            return ToolRequest(request, ForcedCallsParser, False, self.tokenizer)
        return ToolRequest(request, self.auto_parser, True, self.tokenizer)
