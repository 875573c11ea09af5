"""Admin operations on the running mixture: describe it, change its default weights live."""

import asyncio

from server.generation import EngineClient
from server.scoring import EngineScorer, Scored


class AdminService:
    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.scorer = EngineScorer(client)
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

    def _report(self, scored: Scored) -> dict:
        names = self.client.mixture.component_names
        return {
            "token_ids": scored.token_ids,
            "text": self.client.tokenizer.decode(scored.token_ids, skip_special_tokens=True),
            "logprobs": dict(zip(names, scored.logprobs, strict=True)),
            "implicit_rewards": dict(zip(names[1:], scored.implicit_rewards(), strict=True)),
        }

    def response_ids(self, response: str | list[int]) -> list[int]:
        """Token ids of a supplied response; text gets the end-of-text token, as a complete
        answer sampled from a policy would have."""
        if isinstance(response, list):
            return self.client.tokenize_prompt(response)
        tokenizer = self.client.tokenizer
        return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    async def score(self, items: list[tuple[str | list[int], str | list[int]]]) -> dict:
        jobs = [self.scorer.score(self.client.tokenize_prompt(p), self.response_ids(r)) for p, r in items]
        return {"data": [self._report(s) for s in await asyncio.gather(*jobs)]}

    async def sample(self, prompts: list[str | list[int]], n: int, max_tokens: int, seed: int) -> dict:
        jobs = [
            self.scorer.sample(self.client.tokenize_prompt(p), n, max_tokens, seed + i * n)
            for i, p in enumerate(prompts)
        ]
        groups = await asyncio.gather(*jobs)
        return {"data": [{"prompt_index": i, "samples": [self._report(s) for s in g]} for i, g in enumerate(groups)]}
