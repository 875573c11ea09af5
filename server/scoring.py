"""Samples from the reference and per-component sequence log-probs, through the serving engine.

No model is loaded twice: the reference is a component of the mixture, sampling uses weights
one-hot on it, and the logits processor records every component's log-prob of each chosen
(or forced) token while decoding (mixer.recording). Serving traffic running at the same time
keeps its own weights and outputs.
"""

import asyncio
import uuid
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from mixer.processor import WEIGHTS_ARG
from mixer.recording import FORCE_ARG, RECORD_ARG
from server.generation import EngineClient


@dataclass
class Scored:
    """One response: its tokens and log pi_k(response | prompt) for every component."""

    token_ids: list[int]
    logprobs: list[float]  # by component, reference first

    def implicit_rewards(self) -> list[float]:
        """s_k = log pi_k(y|x) - log pi_ref(y|x) for each policy."""
        return [lp - self.logprobs[0] for lp in self.logprobs[1:]]


class EngineScorer:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    async def _record(self, requests: list[tuple[list[int], SamplingParams, str]]) -> list[Scored]:
        """Run recording requests together; their sums come back in one RPC."""
        try:
            async with asyncio.TaskGroup() as group:  # one failure cancels the others
                for prompt_ids, params, key in requests:
                    group.create_task(self.client.final(prompt_ids, params, f"mpo-{key}"))
        finally:
            # Also on failure or cancellation: collect what was recorded so nothing stays behind.
            taken = await self.client.engine.collective_rpc("take_recorded", args=([key for _, _, key in requests],))
        return [Scored(taken[0][key]["token_ids"], taken[0][key]["logprobs"]) for _, _, key in requests]

    async def sample(self, prompt_ids: list[int], count: int, max_tokens: int, seed: int) -> list[Scored]:
        """`count` pure samples from the reference (temperature 1, no top-k/top-p), scored."""
        reference = self.client.mixture.one_hot(self.client.mixture.manifest.reference.name)
        max_tokens = self.client.check_length(prompt_ids, max_tokens)
        requests = []
        for j in range(count):
            key = uuid.uuid4().hex
            params = SamplingParams(
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_tokens=max_tokens,
                seed=seed + j,
                output_kind=RequestOutputKind.FINAL_ONLY,
                extra_args={WEIGHTS_ARG: reference, RECORD_ARG: key},
            )
            requests.append((prompt_ids, params, key))
        return await self._record(requests)

    async def score(self, prompt_ids: list[int], response_ids: list[int]) -> Scored:
        """Per-component log-probs of a given response, by forced decoding."""
        if not response_ids:
            raise ValueError("a response to score must have at least one token")
        self.client.check_length(prompt_ids, len(response_ids))
        key = uuid.uuid4().hex
        params = SamplingParams(
            temperature=1.0,
            max_tokens=len(response_ids),
            ignore_eos=True,
            output_kind=RequestOutputKind.FINAL_ONLY,
            extra_args={
                WEIGHTS_ARG: self.client.mixture.one_hot(self.client.mixture.manifest.reference.name),
                RECORD_ARG: key,
                FORCE_ARG: list(response_ids),
            },
        )
        return (await self._record([(prompt_ids, params, key)]))[0]
