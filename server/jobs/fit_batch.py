"""The body of POST /admin/fit: a batch in one of three forms, and the fit's options.

- prompts only: the server samples `samples_per_prompt` responses from the reference;
- prompts with responses: the server scores the given responses with every component;
- prompts with responses and per-objective reward scores, plus `beta`: the explicit-reward
  variant (rewards normalised per prompt); nothing runs through the engine;
- prompts only with `scorers` and `beta`: the explicit-reward variant on responses sampled
  from the reference, rewarded by the named scorers.
"""

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Seeds of a job's samples are seed + their index: bounded so that every one is a valid seed.
JobSeed = Annotated[int, Field(ge=0, le=2**31, description="Seeds of the samples are seed + their index.")]


class FitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples_per_prompt: int = Field(8, ge=1, le=1024, description="Responses sampled per prompt (prompts-only form).")
    max_tokens: int = Field(64, ge=1, description="Longest sampled response.")
    iterations: int = Field(500, ge=1, le=1_000_000, description="Mirror-descent iterations T.")
    step: float = Field(1.0, gt=0, description="Step constant c: eta = c / sqrt(T).")
    batch_size: int = Field(16, ge=1, description="Prompts per minibatch.")
    seed: JobSeed = 0
    activate: bool = Field(False, description="Make the fitted weights the default when done.")
    beta: float | None = Field(None, gt=0, description="KL strength, for explicit rewards (given or from scorers).")
    scorers: dict[str, str] | None = Field(
        None,
        description="Per policy, the scorer (scorers.get_scorer) whose rewards of the sampled responses drive the "
        "fit instead of implicit rewards (prompts-only form; needs beta).",
    )
    normalise: Literal["none", "standard"] = Field(
        "none",
        description="'standard': implicit rewards standardised per objective over the fit's samples (mean 0, "
        "standard deviation 1; the paper's ablation), so an objective whose policy moved far from the reference "
        "does not outweigh the others by scale alone. Implicit rewards only.",
    )


class FitMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str


class PromptItem(BaseModel):
    """A prompt of a fit or eval batch: text, token ids, or a chat."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | list[int] | None = Field(None, description="Prompt text (tokenised as completions do) or token ids.")
    messages: list[FitMessage] | None = Field(
        None, min_length=1, description="A chat, rendered with the chat template (instead of prompt)."
    )

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> "PromptItem":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("an item needs exactly one of 'prompt' (text or token ids) and 'messages' (a chat)")
        return self

    def prompt_ids(self, client) -> list[int]:
        """The prompt's token ids as the engine client tokenises a completion or a chat."""
        if self.messages is not None:
            chat = [
                {"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in self.messages
            ]
            return client.tokenize_chat(chat)
        return client.tokenize_prompt(self.prompt)

    def scorer_prompt(self, decode) -> str | list[dict[str, str]]:
        """The prompt as a scorer sees it: the text (token ids decoded) or the chat's messages."""
        if self.messages is not None:
            return [m.model_dump() for m in self.messages]
        return self.prompt if isinstance(self.prompt, str) else decode(self.prompt)


class FitItem(PromptItem):
    responses: list[str | list[int]] | None = Field(None, min_length=1)
    rewards: list[dict[str, float]] | None = Field(None, description="Per response: reward by objective (policy name).")


class FitBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FitItem] = Field(min_length=1, max_length=100_000)
    options: FitOptions = Field(default_factory=FitOptions)

    @property
    def mode(self) -> Literal["sample", "score", "rewards"]:
        first = self.items[0]
        return "rewards" if first.rewards is not None else "score" if first.responses is not None else "sample"

    @model_validator(mode="after")
    def _one_form(self) -> "FitBatch":
        forms = {
            ("rewards" if i.rewards is not None else "score" if i.responses is not None else "sample")
            for i in self.items
        }
        if len(forms) > 1:
            raise ValueError(f"all items must have the same form; got {sorted(forms)}")
        if self.mode != "sample":
            counts = {len(i.responses or []) for i in self.items}
            if len(counts) > 1:
                raise ValueError(f"every prompt needs the same number of responses; got {sorted(counts)}")
        if self.options.scorers is not None:
            if self.mode != "sample":
                raise ValueError("options.scorers score responses sampled by the fit: give prompts only")
            if self.options.beta is None:
                raise ValueError("options.beta is required with options.scorers")
        if self.mode == "rewards":
            if self.options.beta is None:
                raise ValueError("options.beta is required with reward scores")
            for n, item in enumerate(self.items):
                if item.responses is None or len(item.rewards or []) != len(item.responses):
                    raise ValueError(f"items.{n}: rewards needs one entry per response")
        return self

    def data_hash(self) -> str:
        """sha256 of the batch's items, canonical JSON: ties a fitted weight set to its data."""
        canonical = json.dumps([i.model_dump() for i in self.items], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_jsonl(text: str, options: BaseModel, batch: type[BaseModel] = FitBatch):
    """A JSONL upload (fit or eval): one item per line (blank lines skipped)."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"line {number} of the upload is not JSON: {err.msg}") from None
    return batch.model_validate({"items": items, "options": options.model_dump()})
