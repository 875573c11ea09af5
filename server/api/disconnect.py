"""A client that goes away cancels its work: the engine requests it started are aborted, so
its engine slots are free for the next request at once."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from server.api.errors import APIError

T = TypeVar("T")


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run work; if the client goes away first, cancel it (which aborts its engine requests)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise APIError(499, "client disconnected")
    return task.result()
