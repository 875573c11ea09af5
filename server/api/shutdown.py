"""How the server stops, so that its supervisor (compose, Kubernetes, systemd) and the load
balancer in front of it can rely on it.

- **SIGTERM** (or SIGINT): a drain. At once /health answers 503, so that nginx and compose stop
  sending, and every new OpenAI request or job gets 503 with Retry-After; a running fit or eval
  ends `failed` with the reason "shutdown" (what it would have stored is not: a weight set is
  stored with its job's success or not at all); requests in flight, streams included, may finish
  for MPO_DRAIN_S seconds; then the server exits 0. A second signal exits at once.
- **The engine dies** (its process killed, out of memory): requests in flight end with an error
  (a stream: an error event, then [DONE]), /health answers 503, and the process exits 1 a
  second later, for its supervisor to start it again; the weight store keeps the active set,
  which the new process applies before it reports healthy.

uvicorn's own handling would stop accepting connections at the first signal (a client would
see a refused connection, not a 503), cut streams after its graceful timeout, and end the
process by re-raising the signal (exit status 143, not 0).
"""

import asyncio
import concurrent.futures
import logging
import signal
from types import FrameType

import uvicorn

logger = logging.getLogger(__name__)

ENGINE_DIED_EXIT = 1


class Stopping:
    """What the app does when it stops; `request_exit` is the HTTP server's (GracefulServer)."""

    def __init__(self, drain_s: float) -> None:
        self.drain_s = drain_s
        self.exit_code = 0
        self.reason: str | None = None  # set once the server stops taking work
        self.request_exit = lambda: None
        self.admission = None  # server.serving.admission.Admission, once the services exist
        self.runners: list = []  # server.jobs.lifecycle.JobRunner

    def bind(self, admission, runners: list) -> None:
        self.admission, self.runners = admission, runners

    async def _close(self, reason: str, job_error: str) -> None:
        self.reason = self.reason or reason
        if self.admission is not None:
            self.admission.close(reason)
        for runner in self.runners:
            await runner.shutdown(job_error)

    async def drain(self) -> None:
        logger.info("draining: new requests get 503, those in flight have %.0f s to finish", self.drain_s)
        await self._close("draining before it stops", "shutdown: the server was asked to stop")
        if self.admission is not None and not await self.admission.drained(self.drain_s):
            logger.warning("%d requests still in flight after %.0f s: cut", self.admission.in_flight, self.drain_s)
        self.request_exit()

    async def watch_engine(self, engine, every_s: float = 0.2) -> None:
        """Exit with ENGINE_DIED_EXIT once the engine is dead (vLLM's AsyncLLM.errored)."""
        while not engine.errored:
            await asyncio.sleep(every_s)
        logger.error("the engine died; exiting with status %d for a restart", ENGINE_DIED_EXIT)
        self.exit_code = ENGINE_DIED_EXIT
        await self._close("its engine died", "shutdown: the engine died")
        await asyncio.sleep(1.0)  # requests in flight send their errors
        self.request_exit()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, draining on the first SIGTERM or SIGINT (Stopping.drain), exiting at
    once on a second, and never re-raising the signal: the process ends with Stopping's code."""

    def __init__(self, config: uvicorn.Config, stopping: Stopping) -> None:
        super().__init__(config)
        self.stopping = stopping
        stopping.request_exit = self._exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: concurrent.futures.Future | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def _exit(self) -> None:
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain is not None or self._loop is None or not self.started:
            self.should_exit = self.force_exit = True  # a second signal, or one before start-up ended
            return
        logger.info("received %s", signal.Signals(sig).name)
        self._drain = asyncio.run_coroutine_threadsafe(self.stopping.drain(), self._loop)
