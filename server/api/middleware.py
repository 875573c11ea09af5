"""Plain ASGI middlewares: Starlette's BaseHTTPMiddleware wraps `receive`, which interferes
with the disconnect detection that streaming responses and cancel_on_disconnect rely on."""

from prometheus_fastapi_instrumentator import Instrumentator, metrics

from server.api.errors import error_response


class BodySizeLimit:
    """413 for bodies announced larger than the limit, before they are read.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware wraps `receive`, which interferes
    with the disconnect detection that streaming responses and cancel_on_disconnect rely on."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                response = error_response(
                    413, f"request body of {int(length)} bytes exceeds the limit of {self.limit} bytes"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ReplicaHeader:
    """Every response says which replica answered (X-MPO-Replica), so an operator behind a load
    balancer can tell where a request went. A plain ASGI middleware, as BodySizeLimit."""

    def __init__(self, app, replica: str) -> None:
        self.app = app
        self.header = (b"x-mpo-replica", replica.encode("latin-1", "replace"))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


# Fine enough at the low end to tell a refusal (admission answers before any work) from work.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def instrument(app) -> None:
    """vLLM serve's HTTP metrics (prometheus-fastapi-instrumentator, as vLLM's own server does):
    http_requests_total by handler, method and status, and http_request_duration_seconds by the
    same, measured in this process from the request's arrival to its last byte; by exact status
    (not vLLM's 2xx/5xx groups), so that how fast refusals (503, 429) are answered shows apart
    from the work and from failures. A plain ASGI middleware: it wraps `send` only."""
    Instrumentator(excluded_handlers=["/metrics", "/health"], should_group_status_codes=False).add(
        metrics.requests(), metrics.latency(buckets=LATENCY_BUCKETS)
    ).instrument(app)
