"""The body of POST /admin/eval: held-out prompts, the candidates to compare, the scorer of
each objective, and how to sample their answers."""

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from server.jobs.fit_batch import JobSeed, PromptItem


class WeightsCandidate(BaseModel):
    """The mixture with explicit weights (by policy name, normalised to sum 1)."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float]
    name: str | None = Field(None, max_length=64, description="Label in the results; default: the weights.")


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidates: list[str | WeightsCandidate] = Field(
        min_length=1,
        max_length=32,
        description="Model ids (the mixture, a component, a baseline such as a soup, a stored weight set "
        "'<mixture>@<id>') or explicit weights. The reference is added if absent.",
    )
    objectives: dict[str, str] = Field(
        min_length=1,
        max_length=16,
        description="Objective name -> scorer (sentiment, concise, readability, reward_model:<folder>, "
        "python:<module>:<function>).",
    )
    reference: str | None = Field(None, description="Model id the win rates compare with; default: the reference.")
    samples_per_prompt: int = Field(1, ge=1, le=64)
    max_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: JobSeed = 0


class EvalBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[PromptItem] = Field(min_length=1, max_length=10_000)
    options: EvalOptions

    def data_hash(self) -> str:
        """sha256 of the prompts, canonical JSON: evals of the same prompts are comparable."""
        canonical = json.dumps([i.model_dump() for i in self.items], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
