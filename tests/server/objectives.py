"""A user's own objective, named by file: `python:<this file>:letters`."""


def letters(prompt, response: str) -> float:
    """How many letters the response has (more is better)."""
    return float(sum(c.isalpha() for c in response))
