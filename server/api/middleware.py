"""Plain ASGI middlewares: Starlette's BaseHTTPMiddleware wraps `receive`, which interferes
with the disconnect detection that streaming responses and cancel_on_disconnect rely on."""

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
