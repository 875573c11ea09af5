"""OpenAI-compatible routes: thin, they validate, delegate to the handlers, and return."""

from fastapi import APIRouter, Request

from server.generation import cancel_on_disconnect
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.sse import sse_response

router = APIRouter(prefix="/v1", tags=["openai"])


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
    for component in mixture.manifest.components:
        role = "reference" if component is mixture.manifest.reference else "policy"
        entries.append({"id": component.name, "root": str(component.path), "mpo_role": role})
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
