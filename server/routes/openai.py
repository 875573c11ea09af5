"""OpenAI-compatible routes: thin, they validate, delegate to the handlers, and return."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.errors import APIError
from server.generation import cancel_on_disconnect
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.sse import sse_response

bearer = HTTPBearer(auto_error=False)


def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """With MPO_API_KEYS set, /v1 needs one of them as a bearer token (as vLLM's --api-key).
    Every key is compared, in constant time, so timing tells nothing about which was close."""
    keys = request.app.state.settings.api_key_list
    if not keys:
        return
    if credentials is None:
        raise APIError(401, "missing API key: send it as 'Authorization: Bearer <key>'", code="invalid_api_key")
    sent = credentials.credentials.encode()
    matches = [hmac.compare_digest(sent, key.encode()) for key in keys]
    if not any(matches):
        raise APIError(401, "incorrect API key", code="invalid_api_key")


router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


async def respond(request: Request, handler, body: ChatCompletionRequest | CompletionRequest):
    """A stream of events, or one body; either way a client that leaves aborts its requests."""
    if body.stream:
        return sse_response(handler.stream(body))
    return await cancel_on_disconnect(request, handler.complete(body))


@router.post("/chat/completions", summary="Chat completion from the mixture (any weights) or one policy")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    return await respond(request, request.app.state.services.chat, body)


@router.post("/completions", summary="Text completion (prompt strings or token ids; echo with prompt logprobs)")
async def completions(body: CompletionRequest, request: Request):
    return await respond(request, request.app.state.services.completions, body)


@router.get("/models", summary="The mixture, each component, and each stored weight set ('<mixture>@<id>')")
async def models(request: Request) -> dict:
    services = request.app.state.services
    mixture, created = services.client.mixture, services.started
    entries = [{"id": mixture.name, "root": mixture.name, "mpo_role": "mixture"}]
    for component in mixture.manifest.components:  # no file-system paths: ids only
        entries.append({"id": component.name, "root": component.name, "mpo_role": mixture.manifest.role(component)})
    for weight_set in services.admin.store.history():
        entries.append({"id": f"{mixture.name}@{weight_set.id}", "root": mixture.name, "mpo_role": "weight_set"})
    return {
        "object": "list",
        "data": [
            {
                **e,
                "object": "model",
                "created": created,
                "owned_by": "mpo-serve",
                "max_model_len": services.client.max_model_len,
            }
            for e in entries
        ],
    }
