"""Preference pairs through the engine: what a pair batch must satisfy before a job starts, and
every component's (and any served mixture's) log-prob of each pair's two answers, by forced
decoding. The pair fit and the pair eval both start here."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from server.exceptions import InvalidRequest
from server.jobs.component_logprobs import ComponentLogprobs, SequenceLogprobs
from server.jobs.fit_batch import LocatedBatch, PairItem
from server.serving.engine_client import EngineClient


@dataclass(frozen=True)
class PreparedPair:
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    objective: str


@dataclass(frozen=True)
class ScoredPair:
    objective: str
    chosen: SequenceLogprobs
    rejected: SequenceLogprobs


def prepare_pairs(batch: LocatedBatch, client: EngineClient, logprobs: ComponentLogprobs) -> list[PreparedPair]:
    """Token ids of every pair, refusing (naming the line or item) a pair for an objective the
    mixture does not have, or a prompt and answer longer than the context."""
    known = client.mixture.manifest.objective_names
    prepared = []
    for n, item in enumerate(batch.items):  # type: ignore[attr-defined]
        assert isinstance(item, PairItem)
        where = batch.where(n)
        if item.objective not in known:
            raise InvalidRequest(
                f"{where}: unknown objective {item.objective!r}; the mixture's objectives are {known}",
                param="objective",
            )
        prompt = item.prompt_ids(client)
        chosen, rejected = logprobs.response_ids(item.chosen), logprobs.response_ids(item.rejected)
        for name, answer in (("chosen", chosen), ("rejected", rejected)):
            try:
                client.check_length(prompt, len(answer))
            except InvalidRequest as err:
                raise InvalidRequest(f"{where}: {name}: {err.message}", param=name) from None
        if chosen == rejected:
            raise InvalidRequest(f"{where}: chosen and rejected are the same tokens: a pair needs two", param="chosen")
        prepared.append(PreparedPair(prompt, chosen, rejected, item.objective))
    return prepared


async def score_pairs(
    logprobs: ComponentLogprobs,
    pairs: list[PreparedPair],
    mixtures: list[list[float]] | None,
    in_flight: int,
    done: Callable[[int], None],
) -> list[ScoredPair]:
    """Both answers of every pair by forced decoding, with each of `mixtures`' served log-probs;
    at most `in_flight` answers in the engine at once (a cancelled job stops queueing); done(n)
    after each n answers."""
    limit = asyncio.Semaphore(max(1, in_flight))

    async def score(prompt: list[int], answer: list[int]) -> SequenceLogprobs:
        async with limit:
            scored = await logprobs.score(prompt, answer, mixtures)
            done(1)
            return scored

    async def pair(p: PreparedPair) -> ScoredPair:
        chosen, rejected = await asyncio.gather(score(p.prompt, p.chosen), score(p.prompt, p.rejected))
        return ScoredPair(p.objective, chosen, rejected)

    return list(await asyncio.gather(*(pair(p) for p in pairs)))
