"""GET /health: 200 while the engine runs and the server takes work, 503 otherwise (starting,
stopping, or an engine that died)."""

from fastapi import APIRouter, Request

from server.api import schemas
from server.api.errors import APIError

router = APIRouter(tags=["health"])


@router.get("/health", **schemas.answers(schemas.Health), summary="200 when the engine is up")
async def health(request: Request) -> dict:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise APIError(503, "the engine is starting")
    stopping = request.app.state.stopping.reason
    if stopping is not None:
        raise APIError(503, f"this server is stopping ({stopping})", code="server_shutting_down")
    try:
        await services.client.engine.check_health()
    except Exception as err:  # noqa: BLE001 - any engine failure means not healthy
        raise APIError(503, f"the engine is not healthy: {err}") from None
    return {"status": "ok"}
