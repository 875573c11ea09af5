"""The mixture's objectives (the manifest's `objectives: {policy: scorer}`): what each policy
was aligned for, and each answer's reward on every one of them.

The playground shows these rewards beside every answer so that whoever chooses weights sees
what moving them buys; the CLI's fit and eval take them as their default scorers. Scorers are
loaded when the server starts, so a manifest naming a scorer that cannot load fails then, not
on the first request; scoring runs in a thread (a reward model is a forward pass).
"""

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from mixer.manifest import Manifest, ManifestError
from scorers import Scorer, ScorerError, get_scorer
from scorers.base import Prompt

MAX_SCORED = 64  # answers per request: a playground's columns, not an eval


class ChatTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    content: str


class ScoreAnswersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | list[ChatTurn] = Field(description="The prompt the answers respond to: text or chat messages.")
    responses: list[str] = Field(min_length=1, max_length=MAX_SCORED, description="The answers to score.")


class Objectives:
    def __init__(self, manifest: Manifest) -> None:
        self.scorers: dict[str, Scorer] = {}
        for policy, spec in manifest.objectives.items():
            try:
                self.scorers[policy] = get_scorer(spec)
            except ScorerError as err:
                raise ManifestError(f"manifest objectives.{policy}: {err}") from None

    def describe(self) -> dict[str, dict]:
        return {policy: scorer.describe() for policy, scorer in self.scorers.items()}

    def specs(self) -> dict[str, str]:
        return {policy: scorer.spec for policy, scorer in self.scorers.items()}

    async def score(self, body: ScoreAnswersRequest) -> dict:
        """Each response's reward on every objective, in the order given."""
        prompt: Prompt = body.prompt if isinstance(body.prompt, str) else [t.model_dump() for t in body.prompt]
        prompts = [prompt] * len(body.responses)

        def rewards() -> dict[str, list[float]]:
            return {policy: scorer(prompts, body.responses) for policy, scorer in self.scorers.items()}

        by_objective = await asyncio.to_thread(rewards)
        answers = range(len(body.responses))
        return {
            "objectives": self.describe(),
            "data": [{policy: values[n] for policy, values in by_objective.items()} for n in answers],
        }
