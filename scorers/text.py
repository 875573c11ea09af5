"""Scorers that read only the response text: the demo's judges (VADER sentiment, minus words,
Flesch reading ease) and held-out ones that measure the same things another way (TextBlob's
pattern lexicon, minus characters, Dale-Chall's familiar words), for a study to check that a
candidate's lead is not an artefact of the judge its training saw."""

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


def textblob_sentiment(response: str) -> float:
    """TextBlob's polarity of the response in [-1, 1]: the pattern library's adjective lexicon
    with its negation and intensifier rules (MIT/BSD; shipped in the package, no download)."""
    from textblob import TextBlob

    return float(TextBlob(response).sentiment.polarity)


def minus_characters(response: str) -> float:
    """Minus the characters of the response, spaces at its ends left out."""
    return -float(len(response.strip()))


# Dale-Chall of one sentence of words outside its familiar list: an empty response scores this
# (textstat's 0 for no words would be the easiest text there is).
DALE_CHALL_EMPTY = 19.5


def dale_chall(response: str) -> float:
    """Dale-Chall readability (textstat): 0.1579 x the percentage of words outside the 3,000
    familiar ones + 0.0496 words/sentence, + 3.6365 when over 5% are unfamiliar. Lower reads
    easier (below 5: a 4th grader; 9-10: college). Word familiarity, not syllables: a text can
    read easy to Flesch and hard here."""
    import textstat

    return float(textstat.dale_chall_readability_score(response)) if response.strip() else DALE_CHALL_EMPTY


def is_degenerate(response: str) -> bool:
    """Not an answer: fewer than MIN_ANSWER_WORDS words, or stuck in a loop (some run of four
    words comes back three times or more)."""
    words = response.lower().split()
    if len(words) < MIN_ANSWER_WORDS:
        return True
    runs = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    return bool(runs) and max(runs.values()) >= 3
