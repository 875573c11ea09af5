"""How an OpenAI route answers: admitted first (server.serving.admission: a refusal is fast,
before any tokenising), then a stream of events or one body; a client that leaves aborts its
engine requests either way, and gives its place back."""

from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

from server.api.disconnect import cancel_on_disconnect


async def respond(
    request: Request, handler, body, frame: Callable[[AsyncIterator[dict]], StreamingResponse]
) -> StreamingResponse | dict:
    """`handler` has stream(body) and complete(body); `frame` makes the stream's events."""
    with request.app.state.services.admission.admit(request.state.api_key) as ticket:
        if body.stream:
            return frame(ticket.hold(await handler.stream(body)))
        return await cancel_on_disconnect(request, handler.complete(body))
