"""The mixture's live weights: describe the mixture, change its default weights (every change
stored as a weight set), roll back, and follow the active set that other replicas change.

Its collaborators are passed in: the mixture state the serving handlers read their defaults
from, the store, and the weight sets known in memory. Jobs that store a weight set and make it
active call `apply_and_store`. What serving and metrics read (the defaults, the active set's
id, the known sets) is in memory: no request waits for the database."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from server.exceptions import NotFound
from server.jobs.weight_sets import KnownWeightSets
from server.serving.mixture import MixtureState
from store.async_store import AsyncWeightStore
from store.weight_store import WeightSet

logger = logging.getLogger(__name__)


class LiveWeights:
    def __init__(
        self, mixture: MixtureState, store: AsyncWeightStore, sets: KnownWeightSets, max_model_len: int
    ) -> None:
        self.mixture = mixture
        self.store = store
        self.sets = sets
        self.max_model_len = max_model_len
        self._lock = asyncio.Lock()
        self.version: int | None = None  # of the active set this replica applied last
        self.active_id: int | None = None  # the active set's id, as this replica last saw it

    async def restore_active(self, replica: str) -> WeightSet:
        """At start-up, before the server reports healthy: fail the jobs this replica ran
        before it stopped, then apply the active weight set, or store the manifest's defaults
        as the first one. A stored set that no longer fits the manifest's policies is not
        applied (the manifest's weights are stored and activated instead)."""
        mixture = self.mixture
        for job in await self.store.fail_jobs(owner=replica):
            logger.warning("job %s was interrupted by a stop of this server: marked failed", job)
        first, stored = await self.store.ensure_active(mixture.manifest.weights, mixture.fits)
        if stored:
            logger.info("no active weight set fits the manifest: its weights are stored as set %s", first.id)
        await self.sets.refresh(full=True)
        applied = await self.follow_active()  # the newest active set: another replica may have moved on
        return applied or first

    async def follow_active(self) -> WeightSet | None:
        """Apply the active weight set if it changed in the store since this replica applied it
        (a change made through any replica, this one included); returns it if applied."""
        state = await self.store.active_state()
        if state is None or state[0] == self.version:
            return None
        async with self._lock:
            state = await self.store.active_state()
            if state is None or state[0] == self.version:
                return None
            version, active = state
            self.version, self.active_id = version, active.id
            if not self.mixture.fits(active.weights):
                logger.warning("active weight set %s names other policies than the manifest: not applied", active.id)
                return None
            self._apply(active.weights)
            logger.info("applied weight set %s (active set version %s)", active.id, version)
            return active

    def _apply(self, weights: dict[str, float]) -> None:
        """Make `weights` the defaults: every request admitted from now on carries them as its
        own weight vector (server.serving.mixture), so nothing needs to reach the engine. (It used to
        be told too, by collective_rpc; on an idle CPU engine that round trip held the next
        step up for about a second, at every change on every replica.)"""
        self.mixture.default_weights = dict(weights)

    async def _apply_then(self, weights: dict[str, float], commit: Callable[[], Awaitable[WeightSet]]) -> WeightSet:
        """Make `weights` the default, then record that in the store with `commit` (which
        returns the set now active); if the store fails, the previous weights come back."""
        async with self._lock:
            previous = dict(self.mixture.default_weights)
            self._apply(weights)
            try:
                active = await commit()
            except BaseException:
                self._apply(previous)
                raise
            self.sets.add(active)
            self.active_id = active.id
            return active

    async def apply_and_store(self, weights: dict[str, float], **source) -> WeightSet:
        """Apply `weights` and store them as the active weight set."""
        return await self._apply_then(weights, partial(self.store.add, weights, activate=True, **source))

    def active_set_id(self) -> int | None:
        return self.active_id

    def describe(self) -> dict:
        mixture = self.mixture
        manifest = mixture.manifest
        serving = manifest.serving
        return {
            "name": mixture.name,
            "lora_mode": {"mode": serving.mode, "reason": serving.reason, "requested": manifest.lora_mode},
            "components": [
                {
                    "name": c.name,
                    "role": manifest.role(c),
                    **({"path": str(c.path)} if c.path is not None else {}),
                    **({"adapter": str(c.adapter)} if c.adapter is not None else {}),
                    **({"soup": c.soup} if c.soup is not None else {}),
                    "weight_bytes": serving.weight_bytes[c.name],
                }
                for c in manifest.components
            ],
            "default_weights": dict(mixture.default_weights),
            "objectives": dict(manifest.objectives),
            "prompt_sets": sorted(manifest.prompts),
            "active_weight_set": self.active_set_id(),
            "dtype": manifest.dtype,
            "max_model_len": self.max_model_len,
        }

    async def set_default_weights(self, weights: object) -> dict:
        """Validate, apply and store as a manual weight set: the next requests use the new
        weights, requests in flight keep the weights they were admitted with."""
        normalised = self.mixture.validate_weights(weights, "weights")
        await self.apply_and_store(normalised, source="manual")
        return self.describe()

    async def activate(self, set_id: int) -> dict:
        """Roll back (or forward) to a stored weight set."""
        weight_set = await self.sets.get(set_id)
        if weight_set is None:
            raise NotFound(f"weight set {set_id} does not exist", param="id")
        self.mixture.check_fits(set_id, weight_set.weights)
        await self._apply_then(weight_set.weights, partial(self.store.activate, set_id))
        return self.describe()

    async def history(self) -> dict:
        """Read from the store (not the sets in memory): the admin's view of what is stored."""
        state = await self.store.active_state()
        active_id = state[1].id if state else None
        evals = await self.store.latest_evals()
        sets = await self.store.history()
        return {"data": [w.as_dict(active_id) | {"latest_eval": evals.get(w.id)} for w in reversed(sets)]}
