"""The demos' two objectives, by policy name, judged by the project's scorers (scorers.text):

positive: VADER's compound sentiment of the response, in [-1, 1].
concise: minus the response length in words, so shorter answers score higher.

Higher is better for both. What counts as a non-answer lives with the scorers too.
"""

from collections.abc import Callable

from scorers.text import MIN_ANSWER_WORDS, concise, is_degenerate, sentiment, word_count

positive = sentiment
OBJECTIVES: dict[str, Callable[[str], float]] = {"positive": positive, "concise": concise}
# The scorer names of the objectives, for eval and fit jobs (scorers.get_scorer).
SCORER_SPECS: dict[str, str] = {"positive": "sentiment", "concise": "concise"}

__all__ = ["MIN_ANSWER_WORDS", "OBJECTIVES", "SCORER_SPECS", "concise", "is_degenerate", "positive", "word_count"]
