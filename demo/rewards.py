"""The demos' objectives, by policy name, judged by the project's scorers (scorers.text):

positive: VADER's compound sentiment of the response, in [-1, 1].
concise: minus the response length in words, so shorter answers score higher.
plain: Flesch reading ease (plain words, short sentences). It pulls against concise: on the
  reference's answers the two correlate at -0.2, and the concise policy's answers read harder
  than the reference's (ease 52 against 65), since the words that go first are the short ones.

Higher is better for every objective. What counts as a non-answer lives with the scorers too.
The tiny demo aligns the first two (TWO_OBJECTIVES); the SmolLM2 demo all three.
"""

from collections.abc import Callable

from scorers.text import MIN_ANSWER_WORDS, concise, is_degenerate, readability, sentiment, word_count

positive = sentiment
plain = readability
OBJECTIVES: dict[str, Callable[[str], float]] = {"positive": positive, "concise": concise, "plain": plain}
TWO_OBJECTIVES = {name: OBJECTIVES[name] for name in ("positive", "concise")}
# The scorer names of the objectives, for eval and fit jobs (scorers.get_scorer).
SCORER_SPECS: dict[str, str] = {"positive": "sentiment", "concise": "concise", "plain": "readability"}

__all__ = [
    "MIN_ANSWER_WORDS",
    "OBJECTIVES",
    "SCORER_SPECS",
    "TWO_OBJECTIVES",
    "concise",
    "is_degenerate",
    "plain",
    "positive",
    "word_count",
]
