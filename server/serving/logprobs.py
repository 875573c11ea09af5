"""OpenAI's logprob shapes from vLLM's: chat's list of entries, completions' parallel arrays,
tokens named by their text or, on request, by their id."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# JSON has no -inf; like vLLM, report masked tokens with a very small finite number.
LOGPROB_FLOOR = -9999.0


def _finite(logprob: float) -> float:
    return max(logprob, LOGPROB_FLOOR)


@dataclass(frozen=True)
class TokenLabels:
    """How tokens are named in logprobs: their text, or "token_id:N" when the client asks
    (vLLM's `return_tokens_as_token_ids`, for clients that need exact ids)."""

    tokenizer: "PreTrainedTokenizerBase"
    as_ids: bool = False

    def label(self, token_id: int, logprob=None) -> str:
        if self.as_ids:
            return f"token_id:{token_id}"
        if logprob is not None and logprob.decoded_token is not None:
            return logprob.decoded_token
        return self.tokenizer.decode([token_id])

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.tokenizer.all_special_ids)

    def width(self, token_id: int) -> int:
        """Characters the token adds to the returned text (special tokens add none)."""
        if token_id in self.special_ids:
            return 0
        return len(self.tokenizer.decode([token_id]))

    def entry(self, token_id: int, logprob) -> dict:
        token = self.label(token_id, logprob)
        return {"token": token, "logprob": _finite(logprob.logprob), "bytes": list(token.encode("utf-8"))}

    def ranked(self, candidates: dict, top: int) -> list:
        """The top-`top` (token_id, Logprob) pairs by rank (the sampled one may be extra)."""
        kept = [c for c in candidates.items() if c[1].rank is not None and c[1].rank <= top]
        return sorted(kept, key=lambda c: c[1].rank)


def chat_logprobs(token_ids: Sequence[int], logprobs: Sequence[dict] | None, top: int, labels: TokenLabels) -> dict:
    """OpenAI chat logprobs: {"content": [{token, logprob, bytes, top_logprobs}]}."""
    content = []
    for token_id, candidates in zip(token_ids, logprobs or [], strict=False):
        entry = labels.entry(token_id, candidates[token_id])
        entry["top_logprobs"] = [labels.entry(tid, lp) for tid, lp in labels.ranked(candidates, top)]
        content.append(entry)
    return {"content": content}


def completion_logprobs(
    token_ids: Sequence[int], logprobs: Sequence[dict | None], top: int, labels: TokenLabels, offset: int
) -> dict:
    """OpenAI completions logprobs: parallel arrays; a None entry (first prompt token) stays
    None. text_offset indexes the returned text, starting at `offset`."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for token_id, candidates in zip(token_ids, logprobs, strict=True):
        if candidates is None:
            tokens.append(labels.label(token_id))
            token_logprobs.append(None)
            top_logprobs.append(None)
        else:
            tokens.append(labels.label(token_id, candidates[token_id]))
            token_logprobs.append(_finite(candidates[token_id].logprob))
            top_logprobs.append({labels.label(t, lp): _finite(lp.logprob) for t, lp in labels.ranked(candidates, top)})
        offsets.append(offset)
        offset += labels.width(token_id)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}
