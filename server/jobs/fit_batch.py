"""The body of POST /admin/fit: a batch in one of four forms, and the fit's options.

- prompts only: the server samples `samples_per_prompt` responses from the reference;
- prompts with responses: the server scores the given responses with every component;
- prompts with responses and per-objective reward scores: given rewards (nothing to reward);
- preference pairs, {prompt | messages, chosen, rejected, objective}: the pair fit.

Three methods (`options.method`): `mpo`, the paper's fit of implicit rewards (standardised with
`normalise`, or explicit rewards from `scorers` or given ones, with `beta`); `judged`, the
worst objective's expected reward under the mixture, from the scorers' (or given) rewards; and
`pairs`, the worst objective's mean log sigmoid of the pairs' margins. A batch of pairs is a
pair fit; any other defaults to mpo.
"""

import hashlib
import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from server.exceptions import InvalidRequest

# Seeds of a job's samples are seed + their index: bounded so that every one is a valid seed.
JobSeed = Annotated[int, Field(ge=0, le=2**31, description="Seeds of the samples are seed + their index.")]


Method = Literal["mpo", "judged", "pairs"]
MPO_MAX_TOKENS = 64  # an mpo fit's samples, as before the judged fit (its samples are an eval's answers)
SAMPLES_PER_PROMPT = {"mpo": 8, "judged": 4}  # a judged fit's answers are an eval's: longer, and drawn again per round
MPO_STEP, SADDLE_STEP = 1.0, 0.3  # weights.solver's c of eta = c / sqrt(T); weights.saddle's constant steps
PAIR_BETA = 0.1  # a pair fit's beta unless given: DPO's usual strength, the demos'


class FitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Method | None = Field(
        None,
        description="'mpo' (MPO's objective F on implicit or explicit rewards), 'judged' (max over lambda of the worst "
        "objective's expected reward under the mixture) or 'pairs' (the worst objective's mean log sigmoid of the "
        "pairs' margins). Default: 'pairs' for a batch of preference pairs, else 'mpo'.",
    )
    samples_per_prompt: int | None = Field(
        None,
        ge=1,
        le=1024,
        description=f"Responses sampled per prompt (prompts-only form; per round for judged). Default: "
        f"{SAMPLES_PER_PROMPT['mpo']} for mpo, {SAMPLES_PER_PROMPT['judged']} for judged.",
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description=f"Longest sampled response. Default: {MPO_MAX_TOKENS} for mpo; for judged, what an eval answers "
        "with (the manifest's answers.max_tokens).",
    )
    temperature: float | None = Field(
        None,
        gt=0,
        le=2,
        description="judged: the temperature answers are sampled at (an eval's: the manifest's answers.temperature); "
        "the fit optimises the mixture at that temperature. Every other fit samples the reference at 1.",
    )
    iterations: int = Field(500, ge=1, le=1_000_000, description="Mirror-descent iterations T (in all rounds).")
    step: float | None = Field(
        None,
        gt=0,
        description=f"mpo: the step constant c of eta = c / sqrt(T) (default {MPO_STEP}). judged and pairs: lambda's "
        f"constant step over the largest gradient entry at the start (default {SADDLE_STEP}).",
    )
    adversary_step: float = Field(
        SADDLE_STEP,
        gt=0,
        description="judged and pairs: the objectives' player's step over the spread of their values at the start.",
    )
    batch_size: int = Field(16, ge=1, description="Prompts per minibatch (mpo; judged and pairs use every prompt).")
    seed: JobSeed = 0
    activate: bool = Field(False, description="Make the fitted weights the default when done.")
    beta: float | None = Field(
        None,
        gt=0,
        description=f"KL strength: mpo's explicit rewards (given or from scorers; required there) and the pair fit's "
        f"margins (default {PAIR_BETA}).",
    )
    scorers: dict[str, str] | None = Field(
        None,
        description="mpo: per policy, the scorer (scorers.get_scorer) whose rewards of the sampled responses drive the "
        "fit instead of implicit rewards (prompts-only form; needs beta). judged: per objective, the scorer of the "
        "responses (default: the manifest's objectives).",
    )
    scale: Literal["win", "standard"] = Field(
        "win",
        description="judged: each objective's rewards as win probabilities against the prompt's reference answers "
        "(ties half; what an eval's win rates measure) or 'standard' (mean 0, deviation 1 over those answers).",
    )
    family: Literal["served", "sequence"] = Field(
        "served",
        description="judged: the family of mixtures optimised: 'served', the per-token product the server samples "
        "from (its log-probs expanded to second order around each round's weights), or 'sequence', the sequence-level "
        "product of MPO's theory (exact importance weights, but on long answers another distribution).",
    )
    resample_every: int | None = Field(
        None,
        ge=0,
        description="judged: every R iterations, sample again from the served mixture at the current weights "
        "(importance weights against it), so that weights far from the start are judged on their own answers. "
        "0: the reference's samples only. Default: half the iterations (two rounds) for prompts alone, else 0.",
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
    rewards: list[dict[str, float]] | None = Field(
        None,
        description="Per response: reward by objective (mpo: the policies; judged: any objectives, higher better).",
    )


class PairItem(PromptItem):
    """A preference pair: for `objective`, `chosen` is the better answer to the prompt."""

    chosen: str | list[int] = Field(description="The preferred answer: text (end-of-text appended) or token ids.")
    rejected: str | list[int] = Field(description="The other answer, in the same form.")
    objective: str = Field(min_length=1, description="The objective the preference is for (one of the mixture's).")

    @field_validator("chosen", "rejected")
    @classmethod
    def _not_empty(cls, answer: str | list[int]) -> str | list[int]:
        if not answer or (isinstance(answer, str) and not answer.strip()):
            raise ValueError("an answer of a pair must not be empty")
        return answer

    @model_validator(mode="after")
    def _two_answers(self) -> "PairItem":
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected are the same answer: a pair needs two")
        return self


PAIR_FIELDS = {"chosen", "rejected", "objective"}


def _item_kind(item) -> str:
    """A line with any of a pair's fields is a pair (so its errors are a pair's)."""
    keys = item.keys() if isinstance(item, dict) else vars(item).keys() if isinstance(item, BaseModel) else ()
    return "pair" if PAIR_FIELDS & set(keys) else "prompt"


# A batch line: a preference pair, or an item of the batch's kind (a fit's, or an eval's prompt).
PairLine = Annotated[PairItem, Tag("pair")]
FitLine = Annotated[Annotated[FitItem, Tag("prompt")] | PairLine, Discriminator(_item_kind)]
PromptLine = Annotated[Annotated[PromptItem, Tag("prompt")] | PairLine, Discriminator(_item_kind)]


class LocatedBatch(BaseModel):
    """A batch whose items may have come from the lines of an upload: errors found later (an
    unknown objective, a prompt too long) name the line, as parse_jsonl's do."""

    _lines: list[int] | None = PrivateAttr(None)

    def where(self, n: int) -> str:
        return f"line {self._lines[n]}" if self._lines is not None else f"items.{n}"

    @property
    def pairs(self) -> bool:
        return isinstance(self.items[0], PairItem)  # type: ignore[attr-defined]

    def data_hash(self) -> str:
        """sha256 of the batch's items, canonical JSON: ties a fitted weight set to its data,
        and makes evals of the same prompts comparable."""
        items = self.items  # type: ignore[attr-defined]
        canonical = json.dumps([i.model_dump() for i in items], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class FitBatch(LocatedBatch):
    model_config = ConfigDict(extra="forbid")

    items: list[FitLine] = Field(min_length=1, max_length=100_000)
    options: FitOptions = Field(default_factory=FitOptions)

    @property
    def mode(self) -> Literal["sample", "score", "rewards", "pairs"]:
        return _form(self.items[0])

    @cached_property
    def prompts(self) -> list[FitItem]:
        """The items of a batch of prompts (with or without responses); none for a batch of pairs
        (a batch has one form: the validator below)."""
        return [item for item in self.items if isinstance(item, FitItem)]

    @property
    def method(self) -> Method:
        return self.options.method or ("pairs" if self.mode == "pairs" else "mpo")

    @property
    def max_tokens(self) -> int | None:
        """The sampled responses' length, where the method has a default of its own (judged:
        None, the caller's eval length)."""
        if self.options.max_tokens is not None or self.method == "judged":
            return self.options.max_tokens
        return MPO_MAX_TOKENS

    @property
    def step(self) -> float:
        return self.options.step or (MPO_STEP if self.method == "mpo" else SADDLE_STEP)

    @property
    def samples_per_prompt(self) -> int:
        """Responses per prompt: sampled (prompts only), or the batch's own."""
        if self.mode != "sample":
            return len(self.prompts[0].responses or []) if self.mode != "pairs" else 2
        return self.options.samples_per_prompt or SAMPLES_PER_PROMPT.get(self.method, SAMPLES_PER_PROMPT["mpo"])

    @property
    def resample_every(self) -> int:
        """Iterations per round of a judged fit (the iterations: one round)."""
        every = self.options.resample_every
        if every is None:
            every = -(-self.options.iterations // 2) if self.method == "judged" and self.mode == "sample" else 0
        return every or self.options.iterations

    @model_validator(mode="after")
    def _one_form(self) -> "FitBatch":
        forms = {_form(i) for i in self.items}
        if len(forms) > 1:
            raise ValueError(f"all items must have the same form; got {sorted(forms)}")
        if self.mode in ("score", "rewards"):
            counts = {len(i.responses or []) for i in self.prompts}
            if len(counts) > 1:
                raise ValueError(f"every prompt needs the same number of responses; got {sorted(counts)}")
        if self.mode == "rewards":
            for n, item in enumerate(self.prompts):
                if item.responses is None or len(item.rewards or []) != len(item.responses):
                    raise ValueError(f"items.{n}: rewards needs one entry per response")
        if (self.mode == "pairs") != (self.method == "pairs"):
            raise ValueError(
                "a batch of preference pairs is fitted by the pair fit (options.method 'pairs'), and only such a batch"
            )
        {"mpo": self._mpo_options, "judged": self._judged_options, "pairs": self._pair_options}[self.method]()
        return self

    def _mpo_options(self) -> None:
        options = self.options
        if options.scorers is not None:
            if self.mode != "sample":
                raise ValueError("options.scorers score responses sampled by the fit: give prompts only")
            if options.beta is None:
                raise ValueError("options.beta is required with options.scorers")
        if self.mode == "rewards" and options.beta is None:
            raise ValueError("options.beta is required with reward scores")
        self._unused("mpo", resample_every=None, scale="win", temperature=None, family="served")

    def _judged_options(self) -> None:
        options = self.options
        if options.resample_every and self.mode != "sample":
            raise ValueError("options.resample_every samples from the mixture: give prompts only")
        if self.mode == "rewards" and options.scorers is not None:
            raise ValueError("the rewards are given with the responses: options.scorers has nothing to score")
        if self.mode == "rewards":
            keys = {tuple(sorted(r)) for i in self.prompts for r in i.rewards or []}
            if len(keys) > 1:
                raise ValueError(f"every response's rewards must name the same objectives; got {sorted(keys)}")
        if options.temperature is not None and self.mode != "sample":
            raise ValueError("options.temperature is what the fit samples at: give prompts only")
        if self.mode == "sample" and self.samples_per_prompt < 2 and options.scale == "win":
            raise ValueError("win probabilities compare a prompt's answers: options.samples_per_prompt must be >= 2")
        self._unused("judged", beta=None, normalise="none")

    def _pair_options(self) -> None:
        self._unused(
            "pairs",
            scorers=None,
            normalise="none",
            resample_every=None,
            scale="win",
            max_tokens=None,
            temperature=None,
            family="served",
        )

    def _unused(self, method: str, **defaults) -> None:
        """Options another method reads, set for this one: refused rather than ignored."""
        given = [name for name, default in defaults.items() if getattr(self.options, name) != default]
        if given:
            raise ValueError(f"options {given} do not apply to the {method} fit")


def _form(item: PromptItem) -> Literal["sample", "score", "rewards", "pairs"]:
    if isinstance(item, PairItem):
        return "pairs"
    assert isinstance(item, FitItem)
    return "rewards" if item.rewards is not None else "score" if item.responses is not None else "sample"


def parse_jsonl(text: str, options: BaseModel, batch: type[LocatedBatch] = FitBatch):
    """A JSONL upload (fit or eval): one item per line (blank lines skipped). What is wrong
    with an item is named by its line, here and later (LocatedBatch.where)."""
    items, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InvalidRequest(f"line {number} of the upload is not JSON: {err.msg}", param="file") from None
            lines.append(number)
    try:
        parsed = batch.model_validate({"items": items, "options": options.model_dump()})
    except ValidationError as err:
        raise InvalidRequest(_by_line(err, lines), param="file") from None
    parsed._lines = lines
    return parsed


def parse_json(body: bytes | str, batch: type[LocatedBatch] = FitBatch):
    """A JSON body {items, options}; errors as parse_jsonl's, naming items by their index."""
    try:
        return batch.model_validate_json(body)
    except ValidationError as err:
        raise InvalidRequest(_by_line(err, None)) from None


def _by_line(err: ValidationError, lines: list[int] | None) -> str:
    """A validation error's reasons, 'items.N' as the upload's line where there are lines, and
    without the tags of the line's union (pair or prompt)."""
    reasons = []
    for error in err.errors():
        loc = [str(part) for part in error["loc"]]
        if len(loc) >= 2 and loc[0] == "items" and loc[1].isdigit():
            rest = loc[3:] if len(loc) > 2 and loc[2] in ("pair", "prompt") else loc[2:]
            loc = [f"line {lines[int(loc[1])]}" if lines is not None else f"items.{loc[1]}", *rest]
        reasons.append(f"{'.'.join(loc) or 'body'}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(reasons)
