"""OpenAI-compatible request bodies. Each request builds the engine's SamplingParams itself.

Unknown fields are accepted and ignored (clients send `store`, `metadata`, ...); known
fields are validated, and a bad value is refused with a message naming the field.
"""

import logging
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

from mixer.needed import WEIGHTS_ARG

logger = logging.getLogger(__name__)


class OpenAIBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_unknown_fields(self):
        if self.model_extra:
            logger.debug("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


class StreamOptions(OpenAIBody):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class MixtureSpec(OpenAIBody):
    weights: dict[str, float] | None = Field(
        None, description="Per-request weights by policy name (normalised to sum 1); default: the active weights."
    )


class JsonSchemaFormat(OpenAIBody):
    name: str | None = None
    description: str | None = None
    schema_: dict | None = Field(None, alias="schema", description="The JSON Schema the output must validate against.")
    strict: bool | None = None


class ResponseFormat(OpenAIBody):
    """OpenAI's response_format: free text, any JSON object, or JSON valid under a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and (self.json_schema is None or self.json_schema.schema_ is None):
            raise ValueError("response_format of type json_schema needs json_schema.schema")
        return self


class StructuredOutputs(OpenAIBody):
    """vLLM's structured_outputs extension: exactly one constraint."""

    json_: dict | str | None = Field(None, alias="json", description="A JSON schema.")
    regex: str | None = None
    choice: list[str] | None = Field(None, min_length=1)
    grammar: str | None = Field(None, description="An EBNF (GBNF) grammar.")
    json_object: bool | None = None

    def constraint(self) -> dict:
        """The one constraint given, keyed by vLLM's StructuredOutputsParams field name."""
        given = {
            "json": self.json_,
            "regex": self.regex,
            "choice": self.choice,
            "grammar": self.grammar,
            "json_object": self.json_object,
        }
        return {k: v for k, v in given.items() if v is not None}

    @model_validator(mode="after")
    def _exactly_one(self) -> "StructuredOutputs":
        if len(given := self.constraint()) != 1:
            raise ValueError(
                "structured_outputs takes exactly one of json, regex, choice, grammar, json_object; "
                f"got {sorted(given)}"
            )
        return self


class SamplingExtras(OpenAIBody):
    """Sampling fields beyond the Responses API's own, which vLLM takes in every generation
    route (chat, completions, responses), and the mixture extension."""

    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="A 64-bit integer, as vLLM's server takes.")
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = Field(None, description="Token id (as a string) to a bias in [-100, 100].")
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    stop_token_ids: list[int] | None = None
    mixture: MixtureSpec | None = Field(None, description="mpo-serve extension: per-request mixture weights.")
    structured_outputs: StructuredOutputs | None = Field(
        None, description="vLLM's extension: output constrained by a JSON schema, regex, choice or grammar."
    )

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        for key, value in (bias or {}).items():
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
            if not -100 <= value <= 100:
                raise ValueError(f"logit_bias values must lie in [-100, 100], got {value!r}")
        return bias

    def extras(self) -> dict:
        """These fields as given (for a request served as another: responses as chat)."""
        return self.model_dump(include=set(SamplingExtras.model_fields), exclude_unset=True, by_alias=True)


class SamplingFields(SamplingExtras):
    """Fields that chat and completions share."""

    model: str = Field(description="The mixture id, or one component's name to serve that policy alone.")
    temperature: float | None = Field(None, ge=0.0, description="Sampling temperature; 0 is greedy. Default 1.")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16, description="Completions per prompt.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = Field(None, description="json_object or json_schema: constrained output.")
    return_tokens_as_token_ids: bool = Field(False, description="Name tokens in logprobs as 'token_id:N' (as vLLM).")

    @model_validator(mode="after")
    def _one_constraint(self):
        constrained = self.response_format is not None and self.response_format.type != "text"
        if constrained and self.structured_outputs is not None:
            raise ValueError("give either response_format or structured_outputs, not both")
        return self

    def structured_outputs_params(self) -> StructuredOutputsParams | None:
        """vLLM's constraint for this request, from response_format or structured_outputs."""
        if self.structured_outputs is not None:
            return StructuredOutputsParams(**self.structured_outputs.constraint())
        if self.response_format is None or self.response_format.type == "text":
            return None
        if self.response_format.type == "json_object":
            return StructuredOutputsParams(json_object=True)
        assert self.response_format.json_schema is not None
        return StructuredOutputsParams(json=self.response_format.json_schema.schema_)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def continuous_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.continuous_usage_stats)

    def sampling_params(
        self,
        max_tokens: int,
        weights: list[float],
        logprobs: int | None,
        prompt_logprobs: int | None = None,
    ) -> SamplingParams:
        """Engine parameters; `weights` is the request's mixture over all components."""
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        optional = {
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "repetition_penalty": self.repetition_penalty,
            "seed": self.seed,
        }
        return SamplingParams(
            n=self.n,
            temperature=1.0 if self.temperature is None else self.temperature,
            max_tokens=max_tokens,
            min_tokens=self.min_tokens,
            stop=stop,
            stop_token_ids=self.stop_token_ids,
            ignore_eos=self.ignore_eos,
            logit_bias={int(k): v for k, v in self.logit_bias.items()} if self.logit_bias else None,
            logprobs=logprobs,
            prompt_logprobs=prompt_logprobs,
            output_kind=RequestOutputKind.DELTA if self.stream else RequestOutputKind.FINAL_ONLY,
            extra_args={WEIGHTS_ARG: weights},
            structured_outputs=self.structured_outputs_params(),
            **{k: v for k, v in optional.items() if v is not None},
        )


class TextPart(OpenAIBody):
    type: Literal["text"]
    text: str


class FunctionDefinition(OpenAIBody):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict | None = Field(None, description="The arguments' JSON Schema.")
    strict: bool | None = None


class ChatTool(OpenAIBody):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(OpenAIBody):
    name: str


class NamedToolChoice(OpenAIBody):
    """tool_choice naming one function: the answer is a call of it (vLLM's structured outputs)."""

    type: Literal["function"] = "function"
    function: NamedFunction


class CalledFunction(OpenAIBody):
    name: str
    arguments: str = Field(description="The arguments as a JSON string.")


class AssistantToolCall(OpenAIBody):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class ChatMessage(OpenAIBody):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[AssistantToolCall] | None = Field(None, description="An assistant turn's calls.")
    tool_call_id: str | None = Field(None, description="The call a tool message answers.")

    @model_validator(mode="after")
    def _tool_fields(self) -> "ChatMessage":
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return self


def template_messages(messages: list[ChatMessage]) -> list[dict]:
    """Messages as vLLM's chat handling takes them: OpenAI's shape, unset fields left out."""
    return [m.model_dump(exclude_none=True) for m in messages]


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    tools: list[ChatTool] | None = Field(None, description="Functions the model may call (server.serving.tools).")
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="none, auto (needs the manifest's tool_call_parser), required, or one named function."
    )
    parallel_tool_calls: bool | None = Field(None, description="With tool_choice required: more than one call.")
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self) -> "ChatCompletionRequest":
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def num_logprobs(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


Prompt = str | list[int]


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="A string, a list of strings, a list of token ids, or a list of token-id lists."
    )
    max_tokens: int = Field(16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, prompt):
        if isinstance(prompt, list) and not prompt:
            raise ValueError("prompt must not be empty")
        if isinstance(prompt, list) and any(isinstance(p, list) and not p for p in prompt):
            raise ValueError("token-id prompts must not be empty")
        return prompt

    @model_validator(mode="after")
    def _supported(self) -> "CompletionRequest":
        if self.suffix:
            raise ValueError("suffix is not supported")
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens may be 0 only with echo")
        if self.max_tokens == 0 and self.stream:
            raise ValueError("max_tokens=0 (echo only) cannot be streamed")
        return self

    def prompts(self) -> list[Prompt]:
        """The prompts as a list, each a string or a list of token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, int) for p in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


class TokenizeCompletionRequest(OpenAIBody):
    """POST /tokenize with a prompt, in vLLM's shape."""

    model: str | None = None
    prompt: str
    add_special_tokens: bool = True
    return_token_strs: bool | None = False


class TokenizeChatRequest(OpenAIBody):
    """POST /tokenize with messages, rendered by the chat template, in vLLM's shape."""

    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    tools: list[ChatTool] | None = Field(None, description="Rendered by the chat template, as in chat requests.")
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    add_special_tokens: bool = False
    return_token_strs: bool | None = False

    @model_validator(mode="after")
    def _one_ending(self) -> "TokenizeChatRequest":
        if self.add_generation_prompt and self.continue_final_message:
            raise ValueError("add_generation_prompt and continue_final_message cannot both be true")
        return self


class DetokenizeRequest(OpenAIBody):
    model: str | None = None
    tokens: list[int]
