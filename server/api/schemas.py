"""What every JSON route answers, as pydantic models, so that `/openapi.json` documents the
responses as well as the requests and a client generated from it knows what comes back.

The services build plain dicts; a route names its model (`answers`), so FastAPI checks each
answer against it before it is sent, and what the schema says is what the server does.
Where a body grows with the method or the phase (a fit's outcome, an eval's table, a scorer's
description), the model names the fields every body has and allows the rest (`Open`), which
the schema says (`additionalProperties`). The OpenAI routes answer either JSON or an event
stream, so they document their JSON body (`openai_responses`) without response_model: the
handlers build it field by field in OpenAI's shapes. tests/server/test_fuzz.py checks every
answer it gets against the document, and tests/server/test_openapi.py real OpenAI answers."""

from typing import Any, Literal

from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from server.jobs.eval_batch import EvalBatch
from server.jobs.fit_batch import FitBatch


class Open(BaseModel):
    """A body whose named fields are always there, and which may carry more."""

    model_config = ConfigDict(extra="allow")


Weights = dict[str, float]


class ErrorBody(BaseModel):
    message: str
    type: str = Field(description="OpenAI's error type for the status: invalid_request_error, not_found_error...")
    param: str | None
    code: str | int = Field(description="A code of ours (say 'server_overloaded') or the HTTP status.")


class ErrorResponse(BaseModel):
    """Every refusal and failure, in OpenAI's envelope (server.api.errors)."""

    error: ErrorBody


# -- health and the tokenizer -------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Tokens(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None


class Detokenized(BaseModel):
    prompt: str


class TokenizerInfo(BaseModel):
    tokenizer_class: str
    eos_token: str | None
    bos_token: str | None
    pad_token: str | None
    unk_token: str | None
    chat_template: str | dict[str, str] | None
    model_max_length: int


# -- models and the mixture ---------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str = Field(description="The mixture, a component, or a stored weight set '<mixture>@<id>'.")
    object: Literal["model"]
    created: int
    owned_by: str
    root: str
    mpo_role: str = Field(description="'mixture', 'reference', 'policy', 'baseline' or 'weight_set'.")
    max_model_len: int


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class Objective(Open):
    """How an objective is scored: its scorer, which way is better, its units."""

    scorer: str
    direction: Literal["higher", "lower"]
    units: str
    length: bool = Field(description="Whether it judges length (an answer cut at the token limit has none).")


class WeightSetBrief(BaseModel):
    id: int
    weights: Weights
    source: str


class Mixture(BaseModel):
    """How the mixture is made, for API-key holders (the playground)."""

    id: str
    reference: str
    policies: list[str]
    baselines: list[str]
    default_weights: Weights
    active_weight_set: int | None
    weight_sets: list[WeightSetBrief]
    objectives: dict[str, Objective] = Field(description="Each policy's objective.")
    max_model_len: int


class AnswerRewards(BaseModel):
    objectives: dict[str, Objective]
    data: list[dict[str, float]] = Field(description="Per answer, in the order given: its reward on each objective.")


class Vote(BaseModel):
    id: int
    object: Literal["mixture.vote"]
    objective: str
    voter: str | None


# -- the admin's view of the mixture and its weight sets ----------------------------------------


class LoraMode(BaseModel):
    mode: str
    reason: str
    requested: str


class Component(BaseModel):
    name: str
    role: str
    path: str | None = None
    adapter: str | None = None
    soup: Weights | None = None
    weight_bytes: int


class MixtureAdmin(BaseModel):
    name: str
    lora_mode: LoraMode
    components: list[Component]
    default_weights: Weights
    objectives: dict[str, str]
    prompt_sets: list[str]
    active_weight_set: int | None
    dtype: str
    max_model_len: int


class LatestEval(BaseModel):
    job_id: str
    min_win_rate: float | None
    min_objective: str | None
    created: float


class WeightSet(BaseModel):
    id: int
    created: float
    weights: Weights
    source: str = Field(description="'manifest', 'manual' or 'fit'.")
    job_id: str | None
    params: dict[str, Any] | None
    data_hash: str | None
    active: bool = False
    latest_eval: LatestEval | None


class WeightHistory(BaseModel):
    data: list[WeightSet]


class JobRow(BaseModel):
    id: str
    kind: Literal["fit", "eval"]
    status: str = Field(description="'running', 'succeeded', 'failed' or 'cancelled'.")
    created: float
    finished: float | None
    error: str | None
    owner: str | None


class JobList(BaseModel):
    data: list[JobRow]


class PromptSet(BaseModel):
    name: str
    prompts: int


class PromptSets(BaseModel):
    data: list[PromptSet]


class ScoredSequence(BaseModel):
    token_ids: list[int]
    text: str
    logprobs: dict[str, float] = Field(description="log pi_k(response | prompt) of every component.")
    implicit_rewards: dict[str, float] = Field(description="log pi_k - log pi_ref of every policy.")


class Scored(BaseModel):
    data: list[ScoredSequence]


class PromptSamples(BaseModel):
    prompt_index: int
    samples: list[ScoredSequence]


class Sampled(BaseModel):
    data: list[PromptSamples]


# -- jobs ---------------------------------------------------------------------------------------


class JobStatus(Open):
    """What every job's status shows; a live job adds its progress, an ended one its outcome."""

    id: str
    phase: str = Field(
        description="queued, then the kind's phases (a fit: sampling or scoring, fitting, storing; an eval:"
        " generating, scoring, storing), then succeeded, failed or cancelled; 'running' for a job another"
        " replica runs that has not yet reported its progress."
    )
    error: str | None = None
    params: dict[str, Any] | None = None
    replica: str | None = Field(None, description="The replica that runs (or ran) it.")


class FitStatus(JobStatus):
    method: str | None = Field(None, description="'mpo', 'judged' or 'pairs'.")
    result_weight_set: int | None = None
    weights: Weights | None = Field(None, description="The fitted weights, once it has succeeded.")
    objective: float | None = Field(None, description="The fit's objective at its weights (F for mpo).")
    expected_scores: dict[str, float] | None = None


class EvalStatus(JobStatus):
    result: dict[str, Any] | None = Field(None, description="The table's numbers, once it has succeeded.")


class Trajectory(BaseModel):
    policies: list[str]
    objectives: list[str]
    method: str
    points: list[dict[str, Any]]


# -- the OpenAI routes: their JSON bodies, documented (the handlers build them) -----------------


class Usage(Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ToolCall(Open):
    id: str
    type: Literal["function"]
    function: dict[str, str] = Field(description="{name, arguments}: arguments as a JSON string.")


class AssistantMessage(Open):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(Open):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class ChatCompletion(Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(Open):
    index: int
    text: str
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class Completion(Open):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ResponseObject(Open):
    """The Responses API's response: its output items (messages, function calls) in OpenAI's shapes."""

    id: str
    object: Literal["response"]
    created_at: int
    model: str
    status: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None


def answers(model: type[BaseModel]) -> dict:
    """The route arguments of one that answers `model`: each answer checked against it, and
    sent as the service built it (a field the service left out stays out)."""
    return {"response_model": model, "response_model_exclude_unset": True}


def openai_responses(model: type[BaseModel]) -> dict:
    """The `responses` of an OpenAI route: `model` as JSON, or its chunks as server-sent events."""
    events = {"schema": {"type": "string", "description": "server-sent events (stream: true), ending data: [DONE]"}}
    return {200: {"model": model, "content": {"text/event-stream": events}}}


def file_route(media_type: str, description: str) -> dict:
    """The route arguments of one that answers a file, not JSON: documented as `media_type`."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {"response_class": Response, "responses": {200: {"content": content, "description": description}}}


# -- the job routes' bodies, which they read themselves (JSON, or a JSONL upload) ----------------

JOB_BODIES = (FitBatch, EvalBatch)
COMPONENTS = "#/components/schemas/{model}"


def job_body(batch: type[BaseModel]) -> dict:
    """The `openapi_extra` of a job route, which reads its body itself: JSON {items, options}
    (`batch`); the JSONL upload it also takes is described, not declared as a second content
    type (openapi-python-client generates code that does not import for a required body of two
    content types: its issue 1451)."""
    upload = (
        "Or multipart/form-data: a JSONL file in the field 'file' (one item a line) and the"
        " options as a JSON object in the field 'options'."
    )
    json_body = {"schema": {"$ref": COMPONENTS.format(model=batch.__name__)}}
    return {"requestBody": {"required": True, "description": upload, "content": {"application/json": json_body}}}


def documented(app: FastAPI) -> dict:
    """The app's OpenAPI document, with what FastAPI cannot know: the job bodies' schemas among
    its components (these routes name theirs in `openapi_extra`), and errors in the one
    envelope the server sends (FastAPI's own 422 body is never sent: server.api.errors)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        models: list[tuple[type[BaseModel], Literal["validation"]]] = [
            (m, "validation") for m in (*JOB_BODIES, ErrorResponse)
        ]
        _, defined = models_json_schema(models, ref_template=COMPONENTS)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for name, schema in defined["$defs"].items():
            if schemas.setdefault(name, schema) != schema:
                raise RuntimeError(f"two schemas named {name!r} in the OpenAPI document")
        error = {"application/json": {"schema": {"$ref": COMPONENTS.format(model="ErrorResponse")}}}
        for methods in document["paths"].values():
            for operation in methods.values():
                operation["responses"].pop("422", None)
                operation["responses"]["4XX"] = {"description": "refused: OpenAI's error envelope", "content": error}
                operation["responses"]["5XX"] = {"description": "failed or unavailable: the same", "content": error}
        app.openapi_schema = document
    return app.openapi_schema
