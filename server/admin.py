"""Admin operations on the running mixture: describe it, change its default weights live."""

import asyncio

from server.generation import EngineClient


class AdminService:
    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self._lock = asyncio.Lock()

    def describe(self) -> dict:
        mixture = self.client.mixture
        manifest = mixture.manifest
        return {
            "name": mixture.name,
            "components": [
                {"name": c.name, "role": "reference" if c is manifest.reference else "policy", "path": str(c.path)}
                for c in manifest.components
            ],
            "default_weights": dict(mixture.default_weights),
            "dtype": manifest.dtype,
            "max_model_len": self.client.max_model_len,
        }

    async def set_default_weights(self, weights: object) -> dict:
        """Validate, push to the engine (between two steps), then record: the next requests
        use the new weights, requests in flight keep the weights they were admitted with."""
        mixture = self.client.mixture
        normalised = mixture.validate_weights(weights, "weights")
        async with self._lock:
            await self.client.engine.collective_rpc("set_default_weights", args=(mixture.vector(normalised),))
            mixture.default_weights = normalised
        return self.describe()
