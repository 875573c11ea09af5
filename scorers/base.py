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
    # A pairwise judge (scorers.llm_judge): (prompts, answers, the reference's answers) -> each
    # answer's outcome against the reference's, 1 win, 0 loss, 1/2 tie; score_batch then refuses.
    compare: Callable[[Sequence[Prompt], Sequence[str], Sequence[str]], list[float]] | None = None
    report: Callable[[], dict] | None = None  # what it has cost so far (a judge's calls and tokens)

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
        described = {"scorer": self.spec, "direction": self.direction, "units": self.units, "length": self.length}
        return described | ({"pairwise": True} if self.compare else {})

    def cost_since(self, before: dict) -> dict:
        """What it has cost since `before` (an earlier report()): its counts less theirs."""
        now = self.report() if self.report else {}
        return {k: v - before[k] if isinstance(v, int) and k in before else v for k, v in now.items()}

    def outcomes(self, prompts: Sequence[Prompt], responses: Sequence[str], references: Sequence[str]) -> list[float]:
        """A pairwise judge's outcome of each response against the reference's answer."""
        if self.compare is None:
            raise ScorerError(f"scorer {self.spec!r} scores one answer; it does not compare two")
        if not responses:
            return []
        found = [float(o) for o in self.compare(prompts, responses, references)]
        if len(found) != len(responses):
            raise ScorerError(f"scorer {self.spec!r} returned {len(found)} outcomes for {len(responses)} responses")
        return found


def prompt_text(prompt: Prompt) -> str:
    """A prompt as plain text: a chat's message contents, one per line."""
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
