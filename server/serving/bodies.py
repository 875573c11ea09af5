"""Pieces of OpenAI response bodies that chat and completions share."""

import time
from dataclasses import dataclass, field


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass(frozen=True)
class Envelope:
    """id, object, created and model: the same on every chunk of one streamed response."""

    id: str
    object: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))

    def __call__(self, choices: list[dict], usage: dict | None = None) -> dict:
        body = {"id": self.id, "object": self.object, "created": self.created, "model": self.model, "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return body
