"""The body of POST /v1/responses (OpenAI's Responses API), and how it reads as a chat request.

Text and message input, instructions, function tools and their results, `text.format` for
structured output, sampling options (with vLLM's extensions: stop, seed, top_k, penalties,
structured_outputs...) and the mixture extension are served; the server keeps no
responses, so what needs a stored one (`previous_response_id`, `conversation`, `background`) is
refused with a message saying to send the conversation as input instead. Unknown fields are
ignored, as elsewhere.
"""

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from server.serving.protocol import FunctionDefinition, JsonSchemaFormat, NamedFunction, OpenAIBody, SamplingExtras


class InputText(OpenAIBody):
    type: Literal["input_text", "output_text", "text"]
    text: str


class MessageItem(OpenAIBody):
    """A message of the conversation: a user's, the system's or an earlier answer."""

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputText]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class FunctionCallItem(OpenAIBody):
    """A call the model made earlier, as the Responses API returned it."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(OpenAIBody):
    """What the client's function returned for a call."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputText]

    def text(self) -> str:
        return self.output if isinstance(self.output, str) else "".join(part.text for part in self.output)


class ReasoningItem(OpenAIBody):
    """An earlier answer's reasoning, sent back by agents; the mixture produces none, so it is skipped."""

    type: Literal["reasoning"]


InputItem = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem, Field(discriminator="type")
]


class FunctionTool(FunctionDefinition):
    """A function tool, in the Responses API's flat shape (chat's definition plus its type)."""

    type: Literal["function"]


class NamedFunctionChoice(NamedFunction):
    """tool_choice naming one function, in the Responses API's flat shape."""

    type: Literal["function"]


class TextFormat(OpenAIBody):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "TextFormat":
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("text.format of type json_schema needs a schema")
        return self


class TextOptions(OpenAIBody):
    format: TextFormat = Field(default_factory=TextFormat)


def _with_type(item: Any) -> Any:
    """Items may leave out `type: message` (the openai package's easy input messages)."""
    return {"type": "message", **item} if isinstance(item, dict) and "type" not in item and "role" in item else item


class ResponsesRequest(SamplingExtras):
    model: str = Field(description="The mixture id, a stored weight set '<mixture>@<id>', or one component.")
    input: str | list[InputItem] = Field(description="A text, or the conversation as messages and tool items.")
    instructions: str | None = Field(None, description="A system message put before the input.")
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    tools: list[FunctionTool] | None = Field(None, description="Function tools (only functions are served).")
    tool_choice: Literal["none", "auto", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    previous_response_id: str | None = Field(None, description="Refused: this server keeps no responses.")
    conversation: Any = Field(None, description="Refused: this server keeps no conversations.")
    background: bool | None = Field(None, description="Refused: responses run in the foreground.")
    metadata: dict[str, str] | None = None
    user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _message_types(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("input"), list):
            data = {**data, "input": [_with_type(item) for item in data["input"]]}
        return data

    @model_validator(mode="after")
    def _input_given(self) -> "ResponsesRequest":
        if isinstance(self.input, list) and not any(not isinstance(i, ReasoningItem) for i in self.input):
            raise ValueError("input must hold at least one message or tool item")
        return self

    def chat_messages(self) -> list[dict]:
        """The conversation as chat messages: instructions first, a run of function calls as one
        assistant turn with tool_calls, each call's output as a tool message."""
        messages: list[dict] = [{"role": "system", "content": self.instructions}] if self.instructions else []
        items = [MessageItem(role="user", content=self.input)] if isinstance(self.input, str) else self.input
        for item in items:
            if isinstance(item, MessageItem):
                messages.append({"role": item.role, "content": item.text()})
            elif isinstance(item, FunctionCallItem):
                call = {
                    "id": item.call_id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
                if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                    messages[-1]["tool_calls"].append(call)
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif isinstance(item, FunctionCallOutputItem):
                messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text()})
        return messages

    def chat_body(self) -> dict:
        """The chat completion request this one is served as (server.serving.chat)."""
        body: dict[str, Any] = self.extras() | {
            "model": self.model,
            "messages": self.chat_messages(),
            "max_completion_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "parallel_tool_calls": self.parallel_tool_calls,
        }
        if self.tools:
            body["tools"] = [
                {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
                for tool in self.tools
            ]
        if isinstance(self.tool_choice, NamedFunctionChoice):
            body["tool_choice"] = {"type": "function", "function": {"name": self.tool_choice.name}}
        elif self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        form = self.text.format if self.text else None
        if form is not None and form.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif form is not None and form.type == "json_schema":
            schema = JsonSchemaFormat(name=form.name, schema=form.schema_, strict=form.strict)
            body["response_format"] = {"type": "json_schema", "json_schema": schema.model_dump(by_alias=True)}
        return {k: v for k, v in body.items() if v is not None}
