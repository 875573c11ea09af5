"""Scorers that read only the response text: VADER sentiment, conciseness and readability."""

from collections import Counter
from functools import lru_cache

MIN_ANSWER_WORDS = 3


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def word_count(response: str) -> int:
    return len(response.split())


def sentiment(response: str) -> float:
    """VADER's compound sentiment of the response, in [-1, 1] (lexicon scorer, MIT)."""
    return float(_vader().polarity_scores(response)["compound"])


def concise(response: str) -> float:
    """Minus the number of words: shorter answers score higher, an empty one highest."""
    return -float(word_count(response))


def readability(response: str) -> float:
    """Flesch reading ease (textstat): 206.835 - 1.015 words/sentence - 84.6 syllables/word.
    Plain words in short sentences score high (90-100: a child reads it), dense prose low
    (below 30); unbounded below. An empty response scores 0 (textstat's value for no words)."""
    import textstat

    return float(textstat.flesch_reading_ease(response)) if response.strip() else 0.0


def is_degenerate(response: str) -> bool:
    """Not an answer: fewer than MIN_ANSWER_WORDS words, or stuck in a loop (some run of four
    words comes back three times or more)."""
    words = response.lower().split()
    if len(words) < MIN_ANSWER_WORDS:
        return True
    runs = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    return bool(runs) and max(runs.values()) >= 3
