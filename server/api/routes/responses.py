"""POST /v1/responses (server.serving.responses), behind the same API keys as the rest of /v1."""

from fastapi import APIRouter, Depends, Request

from server.api import schemas
from server.api.auth import require_api_key
from server.api.respond import respond
from server.api.sse import typed_sse_response
from server.serving.responses_protocol import ResponsesRequest

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


@router.post(
    "/responses",
    responses=schemas.openai_responses(schemas.ResponseObject),
    summary="A response (OpenAI's Responses API) from the mixture, a weight set or one policy",
)
async def responses(body: ResponsesRequest, request: Request):
    return await respond(request, request.app.state.services.responses, body, typed_sse_response)
