"""One registry of scorers by name. A name is a built-in (`sentiment`, `concise`, `readability`;
held out from the demo's training: `textblob`, `characters`, `dale_chall`) or a kind
with a location (`reward_model:<folder>`, `python:<module>:<function>`, `llm:<criterion>`: a
language model comparing each answer with the reference's, scorers.llm_judge). Scorers are cached
by name: a reward model is loaded once per process."""

from collections.abc import Callable, Sequence
from functools import lru_cache

from scorers.base import Prompt, Scorer, ScorerError
from scorers.llm_judge import llm_judge_scorer
from scorers.python import python_scorer
from scorers.reward_model import reward_model_scorer
from scorers.text import concise, dale_chall, minus_characters, readability, sentiment, textblob_sentiment


def _responses_only(judge: Callable[[str], float]) -> Callable[[Sequence[Prompt], Sequence[str]], list[float]]:
    def score_batch(prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        return [judge(r) for r in responses]

    return score_batch


BUILT_IN: dict[str, Callable[[], Scorer]] = {
    "sentiment": lambda: Scorer("sentiment", "higher", "VADER compound in [-1, 1]", _responses_only(sentiment)),
    "concise": lambda: Scorer("concise", "higher", "minus words", _responses_only(concise), length=True),
    "readability": lambda: Scorer("readability", "higher", "Flesch reading ease", _responses_only(readability)),
    # Held-out judges of the same three things (scorers.text)
    "textblob": lambda: Scorer(
        "textblob", "higher", "TextBlob polarity in [-1, 1]", _responses_only(textblob_sentiment)
    ),
    "characters": lambda: Scorer(
        "characters", "higher", "minus characters", _responses_only(minus_characters), length=True
    ),
    "dale_chall": lambda: Scorer("dale_chall", "lower", "Dale-Chall score", _responses_only(dale_chall)),
}
WITH_LOCATION: dict[str, Callable[[str, str], Scorer]] = {
    "reward_model": reward_model_scorer,
    "python": python_scorer,
    "llm": llm_judge_scorer,  # llm:<criterion>: a pairwise judge on an OpenAI-compatible endpoint
}
SCORER_NAMES = [*BUILT_IN, *(f"{kind}:<...>" for kind in WITH_LOCATION)]


@lru_cache(maxsize=32)
def get_scorer(spec: str) -> Scorer:
    """The scorer a name asks for, or a ScorerError that names the problem."""
    if spec in BUILT_IN:
        return BUILT_IN[spec]()
    kind, _, location = spec.partition(":")
    if kind in WITH_LOCATION and location:
        return WITH_LOCATION[kind](spec, location)
    raise ScorerError(f"unknown scorer {spec!r}; known: {', '.join(SCORER_NAMES)}")
