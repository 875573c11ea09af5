"""Server-Sent Events framing for streamed OpenAI responses: chat and completions send `data:`
lines ending with `[DONE]`; the Responses API sends typed events (`event:` and `data:`). Once
headers are sent, an error travels in-band, in the one error envelope."""

import json
import logging
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from server.api.errors import error_body, to_api_error

logger = logging.getLogger(__name__)


def event(payload: dict) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def _framed(chunks: AsyncIterator[dict]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield event(chunk)
    except Exception as exc:  # noqa: BLE001 - headers are sent: errors travel in-band
        error = to_api_error(exc)
        yield event(error_body(error.status, error.message, error.param, error.code))
    yield "data: [DONE]\n\n"


async def _typed(events: AsyncIterator[dict]) -> AsyncIterator[str]:
    sequence = 0
    try:
        async for payload in events:
            sequence = payload.get("sequence_number", sequence) + 1
            yield f"event: {payload['type']}\n" + event(payload)
    except Exception as exc:  # noqa: BLE001 - headers are sent: errors travel in-band
        error = to_api_error(exc)
        envelope = error_body(error.status, error.message, error.param, error.code)
        failure = {"type": "error", "sequence_number": sequence, **envelope["error"], **envelope}
        yield "event: error\n" + event(failure)


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def sse_response(chunks: AsyncIterator[dict]) -> StreamingResponse:
    """Chat and completion chunks, then [DONE]."""
    return _response(_framed(chunks))


def typed_sse_response(events: AsyncIterator[dict]) -> StreamingResponse:
    """The Responses API's typed events (each has its `type`); an error is an `error` event."""
    return _response(_typed(events))
