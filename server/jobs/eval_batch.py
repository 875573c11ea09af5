"""The body of POST /admin/eval: held-out prompts (or preference pairs), the candidates to
compare, the scorer of each objective, and how to sample their answers.

A batch of prompts is answered by every candidate and the answers scored (win rates, Min); a
batch of preference pairs is scored by forced decoding under every candidate (preference
accuracy and margins per objective): nothing is sampled."""

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.jobs.fit_batch import JobSeed, LocatedBatch, PairItem, PromptLine


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
    objectives: dict[str, str] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="Objective name -> scorer (sentiment, concise, readability, reward_model:<folder>, "
        "python:<module>:<function>). Default: the manifest's objectives. Pairs name their own.",
    )
    reference: str | None = Field(None, description="Model id the win rates compare with; default: the reference.")
    samples_per_prompt: int = Field(1, ge=1, le=64)
    max_tokens: int | None = Field(
        None, ge=1, description="Longest answer; default: the manifest's answers.max_tokens."
    )
    temperature: float | None = Field(
        None, ge=0, le=2, description="What answers are sampled at; default: the manifest's answers.temperature."
    )
    top_p: float = Field(1.0, gt=0, le=1)
    seed: JobSeed = 0
    against: str | None = Field(
        None,
        description="A candidate's name: every candidate's win rate (a pair eval: accuracy) is also given as its "
        "paired difference from this one's, on the same prompts and seeds (pairs), with a 95% interval.",
    )


class EvalBatch(LocatedBatch):
    model_config = ConfigDict(extra="forbid")

    items: list[PromptLine] = Field(min_length=1, max_length=10_000)
    options: EvalOptions

    @model_validator(mode="after")
    def _one_form(self) -> "EvalBatch":
        if len({isinstance(item, PairItem) for item in self.items}) > 1:
            raise ValueError("all items must be prompts, or all preference pairs")
        return self
