"""Admission control: a bound on the requests that wait for the engine, checked before any
work is done for a request (before tokenising), and the gate a stopping server closes.

The engine decodes up to max_num_seqs requests at once; the rest wait in its queue, and each
of them makes the wait longer for all. Past max_num_seqs + MPO_MAX_WAITING requests in flight a
new one is refused at once (Overloaded: 503 server_is_overloaded with Retry-After, which OpenAI
clients retry), so that what is admitted keeps its latency; with API keys, one key may also be
held to MPO_MAX_IN_FLIGHT_PER_KEY requests (429, a rate limit). Counted: the OpenAI requests
this server admitted and has not finished (a stream until its last byte or its client's
leaving), one each whatever their `n`; not the fit and eval jobs an admin starts.
"""

import asyncio
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from typing import TypeVar

from server.exceptions import Overloaded, RateLimited, ShuttingDown
from server.metrics import REJECTED

T = TypeVar("T")


class Ticket:
    """One admitted request's place, given back once (release) when the request is done: at the
    end of a `with` block, or, for a stream it holds (hold), at the stream's end."""

    def __init__(self, admission: "Admission", key: str | None) -> None:
        self.admission, self.key = admission, key
        self._released = self._held = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.admission._leave(self.key)

    def hold(self, chunks: AsyncIterator[T]) -> AsyncIterator[T]:
        """The stream, holding this place until it ends. Also given back if the stream is never
        started (a client that left before the first byte) once it is collected."""
        self._held = True

        async def holding() -> AsyncIterator[T]:
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                self.release()

        stream = holding()
        weakref.finalize(stream, self.release)
        return stream

    def __enter__(self) -> "Ticket":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._held or exc[0] is not None:
            self.release()


class Admission:
    def __init__(self, running: int, max_waiting: int, per_key: int | None, retry_after_s: float) -> None:
        self.running = running  # what the engine decodes at once (max_num_seqs)
        self.capacity = running + max_waiting  # requests in flight: decoding, and waiting for a slot
        self.per_key = per_key
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.by_key: Counter[str] = Counter()
        self.stopping: str | None = None  # why every request is refused (close)
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - self.running)

    def close(self, reason: str) -> None:
        """Refuse every request from now on (ShuttingDown, saying `reason`)."""
        self.stopping = self.stopping or reason

    def admit(self, key: str | None) -> Ticket:
        """A place for one request from API key `key` (None: no keys), or the reason why not."""
        if self.stopping is not None:
            REJECTED.labels("shutting_down").inc()
            raise ShuttingDown(f"this server is stopping ({self.stopping}); retry", self.retry_after_s)
        # A key at its own bound hears so first: waiting for the server to be less busy would not help it.
        if key is not None and self.per_key is not None and self.by_key[key] >= self.per_key:
            REJECTED.labels("per_key").inc()
            raise RateLimited(
                f"this API key has {self.by_key[key]} requests in flight, the most one key may have; "
                f"retry after {self.retry_after_s:g} s",
                self.retry_after_s,
            )
        if self.in_flight >= self.capacity:
            REJECTED.labels("overloaded").inc()
            raise Overloaded(
                f"the server is overloaded: {self.waiting} requests wait for the engine already, the most it "
                f"queues; retry after {self.retry_after_s:g} s",
                self.retry_after_s,
            )
        self.in_flight += 1
        self._idle.clear()
        if key is not None:
            self.by_key[key] += 1
        return Ticket(self, key)

    def _leave(self, key: str | None) -> None:
        self.in_flight -= 1
        if key is not None:
            self.by_key[key] -= 1
            if not self.by_key[key]:
                del self.by_key[key]
        if not self.in_flight:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Wait until no request is in flight, at most `timeout` seconds; whether none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
