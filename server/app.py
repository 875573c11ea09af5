"""The FastAPI application: one engine, built once in the lifespan, shared by all routes."""

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY

from mixer.manifest import Manifest
from server.admin import AdminService
from server.chat import ChatHandler
from server.cluster import ReplicaSync
from server.completions import CompletionHandler
from server.engine import prepare_engine, start_engine
from server.errors import error_response, install_error_handlers
from server.evaljobs import EvalJobs
from server.fitjobs import FitJobs
from server.generation import EngineClient
from server.metrics import MixtureCollector
from server.mixture import MixtureState
from server.routes import admin, health, metrics, openai, tokenize
from server.settings import Settings
from weights.store import WeightStore

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Long-lived handlers the routes take from app.state."""

    client: EngineClient
    chat: ChatHandler
    completions: CompletionHandler
    admin: AdminService
    fits: FitJobs
    evals: EvalJobs
    sync: ReplicaSync
    started: int


def build_services(engine, manifest, folder: Path, store: WeightStore, settings: Settings) -> Services:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    client = EngineClient(engine, tokenizer, MixtureState(manifest), manifest.max_model_len or 0)
    admin = AdminService(client, store)
    fits = FitJobs(admin, concurrency=settings.max_num_seqs, replica=settings.replica)
    evals = EvalJobs(admin, concurrency=settings.max_num_seqs, folder=settings.eval_dir, replica=settings.replica)
    sync = ReplicaSync(admin, [fits, evals], lease_s=settings.job_lease_s)
    return Services(client, ChatHandler(client), CompletionHandler(client), admin, fits, evals, sync, int(time.time()))


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


def create_app(settings: Settings, manifest: Manifest) -> FastAPI:
    """The app over a loaded manifest (mixer.manifest.load_manifest, adapters merged)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = start_engine(manifest, settings)
        try:
            await prepare_engine(engine)
            folder = Path(engine.vllm_config.model_config.model)
            services = build_services(
                engine, manifest, folder, WeightStore(settings.weight_store, manifest.name), settings
            )
            # The active set is applied before the server answers /health (lifespan runs first).
            active = await services.admin.restore_active(settings.replica)
            logger.info("active weight set %s: %s", active.id, active.weights)
            services.sync.start()
            app.state.services = services
            collector = MixtureCollector(services)
            REGISTRY.register(collector)
            logger.info("serving %s with components %s", manifest.name, [c.name for c in manifest.components])
            try:
                yield
            finally:
                REGISTRY.unregister(collector)
        finally:
            services = getattr(app.state, "services", None)
            if services is not None:
                await services.sync.stop()
                services.fits.stop()
                services.evals.stop()
                services.admin.store.close()
            engine.shutdown()

    app = FastAPI(title="mpo-serve", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(ReplicaHeader, replica=settings.replica)
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(tokenize.router)
    return app
