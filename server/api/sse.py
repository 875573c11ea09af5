"""Server-Sent Events framing for streamed OpenAI responses: `data:` lines ending with `[DONE]`.
Once headers are sent, an error travels in-band, in the one error envelope."""

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


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def sse_response(chunks: AsyncIterator[dict]) -> StreamingResponse:
    """Chat and completion chunks, then [DONE]."""
    return _response(_framed(chunks))
