"""Votes: a person's choice between two answers to one prompt, for one of the mixture's
objectives. A vote is checked as a pair line is (server.jobs.fit_batch.PairItem: two answers,
not empty, not the same; an objective the mixture has), stored with a fingerprint of the API key
that cast it, and read back as the pair it states, so that what people prefer is fitted and
evaluated exactly as an uploaded file of pairs would be.

The settings that produced each answer (a weight set, weights, a policy) are kept beside the
vote but not exported: a pair fit should learn from what the answers say, and a blind vote is
cast without knowing them.
"""

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mixer.manifest import Manifest
from server.exceptions import InvalidRequest
from server.jobs.fit_batch import FitMessage, PairItem
from store.async_store import AsyncWeightStore


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | list[FitMessage] = Field(description="The prompt both answers respond to: text or chat messages.")
    objective: str = Field(description="The objective the vote is for: one of the mixture's (GET /v1/mixture).")
    chosen: str = Field(description="The answer preferred for that objective.")
    rejected: str = Field(description="The other answer.")
    chosen_setting: dict[str, Any] | None = Field(
        None, description="What produced the chosen answer (model, weights...); kept, not exported."
    )
    rejected_setting: dict[str, Any] | None = Field(None, description="What produced the rejected answer.")

    def pair(self) -> PairItem:
        """The vote as a pair line (its checks: not empty, two different answers)."""
        prompt = {"prompt": self.prompt} if isinstance(self.prompt, str) else {"messages": self.prompt}
        try:
            return PairItem.model_validate(
                prompt | {"chosen": self.chosen, "rejected": self.rejected, "objective": self.objective}
            )
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise InvalidRequest(f"{where}: {message}" if where else message, param=where or None) from None


def fingerprint(api_key: str | None) -> str | None:
    """Which key voted, without keeping the key: the first 12 hex digits of its sha256."""
    return None if api_key is None else hashlib.sha256(api_key.encode()).hexdigest()[:12]


class Votes:
    def __init__(self, manifest: Manifest, store: AsyncWeightStore) -> None:
        self.objectives = manifest.objective_names
        self.store = store

    async def cast(self, body: VoteRequest, api_key: str | None) -> dict:
        pair = body.pair()
        if pair.objective not in self.objectives:
            raise InvalidRequest(
                f"unknown objective {pair.objective!r}; the mixture's objectives are {self.objectives}",
                param="objective",
            )
        vote = body.model_dump() | {"voter": fingerprint(api_key)}
        vote_id = await self.store.add_vote(vote)
        return {"id": vote_id, "object": "mixture.vote", "objective": pair.objective, "voter": vote["voter"]}

    async def export(self, objective: str | None = None) -> str:
        """Every vote of the mixture as a preference batch: one JSON pair a line, oldest first."""
        if objective is not None and objective not in self.objectives:
            raise InvalidRequest(
                f"unknown objective {objective!r}; the mixture's objectives are {self.objectives}", param="objective"
            )
        lines = []
        for vote in await self.store.votes(objective):
            prompt = vote["prompt"]
            line = {"prompt": prompt} if isinstance(prompt, str) else {"messages": prompt}
            line |= {"chosen": vote["chosen"], "rejected": vote["rejected"], "objective": vote["objective"]}
            lines.append(json.dumps(line) + "\n")
        return "".join(lines)
