"""What every scorer is: a named batch function from (prompt, response) pairs to rewards,
with the direction in which a reward is better and its units (for tables and win rates)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

# A prompt as the user gave it: plain text, or a chat (OpenAI-style messages).
Prompt = str | list[dict[str, str]]
Direction = Literal["higher", "lower"]


class ScorerError(ValueError):
    """A scorer name or path that cannot be used; the message names it."""


@dataclass(frozen=True)
class Scorer:
    spec: str  # the name it was asked for, e.g. "sentiment" or "reward_model:/models/rm"
    direction: Direction  # which way is better
    units: str
    score_batch: Callable[[Sequence[Prompt], Sequence[str]], list[float]]
    # A length judge: an answer cut at the token limit has no length of its own, so win rates
    # treat it as longer than any answer that ended (evaluation.stats.censor_cut).
    length: bool = False

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        """One reward per (prompt, response) pair, as floats."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not responses:
            return []
        rewards = [float(r) for r in self.score_batch(prompts, responses)]
        if len(rewards) != len(responses):
            raise ScorerError(f"scorer {self.spec!r} returned {len(rewards)} rewards for {len(responses)} responses")
        return rewards

    def better(self, a: float, b: float) -> bool:
        """Whether reward a is strictly better than reward b."""
        return a > b if self.direction == "higher" else a < b

    def describe(self) -> dict:
        return {"scorer": self.spec, "direction": self.direction, "units": self.units, "length": self.length}


def prompt_text(prompt: Prompt) -> str:
    """A prompt as plain text: a chat's message contents, one per line."""
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
