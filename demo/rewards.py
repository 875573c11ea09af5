"""Automatic judges of the demo's two objectives, higher is better for both.

positive: VADER's compound sentiment of the response, in [-1, 1] (lexicon scorer, MIT).
concise: minus the response length in words, so shorter answers score higher.
"""

from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def positive(response: str) -> float:
    """VADER compound sentiment of the response."""
    return float(_vader().polarity_scores(response)["compound"])


def concise(response: str) -> float:
    """Minus the number of words: an empty answer is the most concise."""
    return -float(len(response.split()))


OBJECTIVES: dict[str, Callable[[str], float]] = {"positive": positive, "concise": concise}
