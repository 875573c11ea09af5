"""Every component's log-probability of a sequence, through the serving engine: samples from
the reference (or from the served mixture at given weights) with their log-probs, and forced
decoding of given responses; optionally the served mixture's log-prob under given weight
vectors too. What fits score with (implicit rewards, importance weights), what pair evals
measure margins with, and what /admin/score and /admin/sample return. Not to be confused with
`scorers/`, the objectives' rewards of a text.

No model is loaded twice: the reference is a component of the mixture, sampling uses weights
one-hot on it, and the logits processor records every component's log-prob of each chosen
(or forced) token while decoding (mixer.recording). Serving traffic running at the same time
keeps its own weights and outputs.
"""

import asyncio
import uuid
from dataclasses import dataclass, field

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from mixer.needed import (
    FORCE_ARG,
    RECORD_ARG,
    RECORD_EXPANSION_ARG,
    RECORD_MIXTURES_ARG,
    RECORD_TEMPERATURE_ARG,
    WEIGHTS_ARG,
)
from server.exceptions import InvalidRequest
from server.serving.engine_client import EngineClient


@dataclass
class SequenceLogprobs:
    """One response: its tokens and log pi_k(response | prompt) for every component."""

    token_ids: list[int]
    logprobs: list[float]  # by component: reference, policies, baselines
    policies: int  # how many of them are policies
    mixtures: list[float] = field(default_factory=list)  # the served log-prob under each recorded weight vector
    # around a recorded centre (mixer.recording): sum_t log Z_t, its gradient (C) and Hessian (C*C, flat)
    expansion: list[float] | None = None
    finish_reason: str | None = None  # of a sampled response ("length": cut at the token limit)

    @property
    def policy_logprobs(self) -> list[float]:
        return self.logprobs[1 : 1 + self.policies]

    def implicit_rewards(self) -> list[float]:
        """s_k = log pi_k(y|x) - log pi_ref(y|x) for each policy."""
        return [lp - self.logprobs[0] for lp in self.logprobs[1 : 1 + self.policies]]


class ComponentLogprobs:
    def __init__(self, client: EngineClient) -> None:
        self.client = client

    async def _record(
        self, prompt_ids: list[int], params: SamplingParams, mixtures: list[list[float]] | None = None
    ) -> list[SequenceLogprobs]:
        """Run one recording request (n >= 1 completions); in the order of its completions.
        mixtures: weight vectors (over all components) whose served log-probs to record too."""
        key = uuid.uuid4().hex
        params.extra_args = {**(params.extra_args or {}), RECORD_ARG: key}
        if mixtures:
            params.extra_args[RECORD_MIXTURES_ARG] = [list(m) for m in mixtures]
        try:
            output = await self.client.final(prompt_ids, params, f"mpo-{key}")
        finally:
            # Also on failure or cancellation: collect what was recorded so nothing stays behind.
            taken = (await self.client.engine.collective_rpc("take_recorded", args=([key],)))[0].get(key, [])
        by_tokens = {tuple(r["token_ids"]): r for r in taken}
        completions = sorted(output.outputs, key=lambda c: c.index)
        policies = len(self.client.mixture.manifest.policies)
        recorded = [by_tokens[tuple(c.token_ids)] for c in completions]
        return [
            SequenceLogprobs(list(c.token_ids), r["logprobs"], policies, r["mixtures"], r["expansion"], c.finish_reason)
            for c, r in zip(completions, recorded, strict=True)
        ]

    async def sample(
        self,
        prompt_ids: list[int],
        count: int,
        max_tokens: int,
        seed: int,
        weights: list[float] | None = None,
        temperature: float = 1.0,
        expansion: list[float] | None = None,
    ) -> list[SequenceLogprobs]:
        """`count` pure samples (no top-k/top-p), scored: from the reference at temperature 1, or
        from the served mixture at `weights` (a vector over all components; one-hot on the
        reference is the reference) and `temperature`, whose log-prob of each sample is then
        recorded too (mixtures[0]: the distribution it was drawn from); with `expansion` (a
        vector over all components), the served log-prob's expansion around it at `temperature`.
        One request with n=count: the prompt is prefilled once; child j is seeded seed + j."""
        if weights is None and temperature != 1.0:
            raise ValueError("samples at another temperature need the weights they are drawn at (their log q)")
        reference = self.client.mixture.one_hot(self.client.mixture.manifest.reference.name)
        params = SamplingParams(
            n=count,
            temperature=temperature,
            top_p=1.0,
            top_k=0,
            max_tokens=self.client.check_length(prompt_ids, max_tokens),
            seed=seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
            extra_args={
                WEIGHTS_ARG: reference if weights is None else list(weights),
                RECORD_TEMPERATURE_ARG: temperature,
            }
            | ({} if expansion is None else {RECORD_EXPANSION_ARG: list(expansion)}),
        )
        return await self._record(prompt_ids, params, None if weights is None else [weights])

    async def score(
        self,
        prompt_ids: list[int],
        response_ids: list[int],
        mixtures: list[list[float]] | None = None,
        expansion: list[float] | None = None,
    ) -> SequenceLogprobs:
        """Per-component log-probs of a given response, by forced decoding; the served mixture's
        under each of `mixtures` (weight vectors over all components); the served log-prob's
        expansion around `expansion` (at temperature 1)."""
        if not response_ids:
            raise InvalidRequest("a response to score must have at least one token")
        self.client.check_length(prompt_ids, len(response_ids))
        params = SamplingParams(
            temperature=1.0,
            max_tokens=len(response_ids),
            ignore_eos=True,
            output_kind=RequestOutputKind.FINAL_ONLY,
            extra_args={
                WEIGHTS_ARG: self.client.mixture.one_hot(self.client.mixture.manifest.reference.name),
                FORCE_ARG: list(response_ids),
            }
            | ({} if expansion is None else {RECORD_EXPANSION_ARG: list(expansion)}),
        )
        return (await self._record(prompt_ids, params, mixtures))[0]

    def response_ids(self, response: str | list[int]) -> list[int]:
        """Token ids of a supplied response; text gets the end-of-text token, as a complete
        answer sampled from a policy would have."""
        if isinstance(response, list):
            return self.client.tokenize_prompt(response)
        tokenizer = self.client.tokenizer
        return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    def report(self, scored: SequenceLogprobs) -> dict:
        """One sequence as /admin/score and /admin/sample show it."""
        names = self.client.mixture.component_names
        return {
            "token_ids": scored.token_ids,
            "text": self.client.tokenizer.decode(scored.token_ids, skip_special_tokens=True),
            "logprobs": dict(zip(names, scored.logprobs, strict=True)),
            "implicit_rewards": dict(
                zip(self.client.mixture.manifest.policy_names, scored.implicit_rewards(), strict=True)
            ),
        }

    async def score_items(self, items: list[tuple[str | list[int], str | list[int]]]) -> dict:
        """Every component's log-prob of each (prompt, response) pair."""
        jobs = [self.score(self.client.tokenize_prompt(p), self.response_ids(r)) for p, r in items]
        return {"data": [self.report(s) for s in await asyncio.gather(*jobs)]}

    async def sample_prompts(self, prompts: list[str | list[int]], n: int, max_tokens: int, seed: int) -> dict:
        """`n` samples from the reference per prompt, prompt i seeded seed + i*n, with their log-probs."""
        jobs = [self.sample(self.client.tokenize_prompt(p), n, max_tokens, seed + i * n) for i, p in enumerate(prompts)]
        groups = await asyncio.gather(*jobs)
        return {"data": [{"prompt_index": i, "samples": [self.report(s) for s in g]} for i, g in enumerate(groups)]}
