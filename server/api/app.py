"""The FastAPI application: one engine, built once in the lifespan, shared by all routes."""

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY

from mixer.manifest import Manifest
from server.api import schemas
from server.api.errors import install_error_handlers
from server.api.middleware import BodySizeLimit, ReplicaHeader, instrument
from server.api.routes import admin, health, metrics, mixture, openai, playground, responses, tokenize
from server.api.shutdown import Stopping
from server.engine import prepare_engine, start_engine
from server.jobs.component_logprobs import ComponentLogprobs
from server.jobs.eval_jobs import EvalJobs
from server.jobs.fit_jobs import FitJobs
from server.jobs.lifecycle import JobRunner
from server.jobs.live_weights import LiveWeights
from server.jobs.prompt_sets import PromptSets
from server.jobs.replica_sync import ReplicaSync
from server.jobs.weight_sets import KnownWeightSets
from server.metrics import MixtureCollector
from server.preferences.votes import Votes
from server.serving.admission import Admission
from server.serving.chat import ChatHandler
from server.serving.completions import CompletionHandler
from server.serving.engine_client import EngineClient
from server.serving.mixture import MixtureState
from server.serving.models import ModelList
from server.serving.objectives import Objectives
from server.serving.responses import ResponsesHandler
from server.serving.tools import ToolCalling
from server.settings import Settings
from store.async_store import AsyncWeightStore
from store.weight_store import WeightStore

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Long-lived handlers the routes take from app.state; each built with what it uses."""

    client: EngineClient
    admission: Admission
    store: AsyncWeightStore
    weights: LiveWeights
    logprobs: ComponentLogprobs
    chat: ChatHandler
    responses: ResponsesHandler
    completions: CompletionHandler
    models: ModelList
    objectives: Objectives
    prompt_sets: PromptSets
    votes: Votes
    fits: FitJobs
    evals: EvalJobs
    sync: ReplicaSync

    @property
    def runners(self) -> list[JobRunner]:
        return [self.fits, self.evals]


def build_services(engine, manifest: Manifest, folder: Path, store: AsyncWeightStore, settings: Settings) -> Services:
    from transformers import AutoTokenizer

    sets = KnownWeightSets(store)

    async def stored_weights(set_id: int) -> dict[str, float] | None:
        weight_set = await sets.get(set_id)
        return None if weight_set is None else weight_set.weights

    tokenizer = AutoTokenizer.from_pretrained(folder)
    mixture = MixtureState(manifest, stored_weights)
    client = EngineClient(engine, tokenizer, mixture, manifest.max_model_len or 0)
    weights = LiveWeights(mixture, store, sets, client.max_model_len)
    logprobs = ComponentLogprobs(client)
    concurrency, replica = settings.max_num_seqs, settings.replica
    fits = FitJobs(client, logprobs, weights, store, replica, concurrency)
    evals = EvalJobs(client, logprobs, weights, store, replica, concurrency, settings.eval_dir)
    objectives = Objectives(manifest)

    def weight_sets() -> list[dict]:
        return [{"id": s.id, "weights": s.weights, "source": s.source} for s in sets.all()]

    chat = ChatHandler(client, ToolCalling(tokenizer, manifest.tool_call_parser, manifest.tool_strict_level))
    admission = Admission(
        settings.max_num_seqs, settings.max_waiting, settings.max_in_flight_per_key, settings.retry_after_s
    )
    return Services(
        client=client,
        admission=admission,
        store=store,
        weights=weights,
        logprobs=logprobs,
        chat=chat,
        responses=ResponsesHandler(chat),
        completions=CompletionHandler(client),
        models=ModelList(client, objectives, weight_sets, weights.active_set_id),
        objectives=objectives,
        prompt_sets=PromptSets(manifest),
        votes=Votes(manifest, store),
        fits=fits,
        evals=evals,
        sync=ReplicaSync(weights, store, [fits, evals], lease_s=settings.job_lease_s),
    )


def create_app(settings: Settings, manifest: Manifest) -> FastAPI:
    """The app over a loaded manifest (mixer.manifest.load_manifest, adapters merged)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = start_engine(manifest, settings)
        try:
            await prepare_engine(engine)
            folder = Path(engine.vllm_config.model_config.model)
            store = AsyncWeightStore(WeightStore(settings.weight_store, manifest.name))
            services = build_services(engine, manifest, folder, store, settings)
            # The active set is applied before the server answers /health (lifespan runs first).
            active = await services.weights.restore_active(settings.replica)
            logger.info("active weight set %s: %s", active.id, active.weights)
            services.sync.start()
            stopping.bind(services.admission, services.runners)
            watcher = asyncio.create_task(stopping.watch_engine(engine))
            app.state.services = services
            collector = MixtureCollector(services)
            REGISTRY.register(collector)
            logger.info("serving %s with components %s", manifest.name, [c.name for c in manifest.components])
            try:
                yield
            finally:
                REGISTRY.unregister(collector)
                watcher.cancel()
        finally:
            built = getattr(app.state, "services", None)
            if built is not None:
                await built.sync.stop()
                for runner in built.runners:
                    await runner.shutdown("shutdown: the server stopped")
                built.store.close()
            engine.shutdown()

    app = FastAPI(title="mpo-serve", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.stopping = stopping = Stopping(settings.drain_s)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(ReplicaHeader, replica=settings.replica)
    instrument(app)
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(responses.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(tokenize.router)
    app.include_router(mixture.router)
    playground.mount(app)
    app.openapi = partial(schemas.documented, app)  # type: ignore[method-assign]
    return app
