"""GET /metrics: vLLM's Prometheus metrics and the mixture's own (server.metrics)."""

from fastapi import APIRouter
from fastapi.responses import Response

from server.api import schemas
from server.metrics import exposition

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    **schemas.file_route("text/plain", "Prometheus text exposition"),
    summary="Prometheus text: vLLM's engine metrics (vllm:*) and the mixture's (mpo_*)",
)
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
