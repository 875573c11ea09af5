"""OpenAI-compatible routes: thin, they validate, delegate to the handlers, and return."""

from fastapi import APIRouter, Depends, Request

from server.api import schemas
from server.api.auth import require_api_key
from server.api.respond import respond
from server.api.sse import sse_response
from server.serving.protocol import ChatCompletionRequest, CompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


@router.post(
    "/chat/completions",
    responses=schemas.openai_responses(schemas.ChatCompletion),
    summary="Chat completion from the mixture (any weights) or one policy",
)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    return await respond(request, request.app.state.services.chat, body, sse_response)


@router.post(
    "/completions",
    responses=schemas.openai_responses(schemas.Completion),
    summary="Text completion (prompt strings or token ids; echo with prompt logprobs)",
)
async def completions(body: CompletionRequest, request: Request):
    return await respond(request, request.app.state.services.completions, body, sse_response)


@router.get(
    "/models",
    **schemas.answers(schemas.ModelList),
    summary="The mixture, each component, and each stored weight set ('<mixture>@<id>')",
)
async def models(request: Request) -> dict:
    return request.app.state.services.models.list()
