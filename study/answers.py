"""Every candidate's answers to the held-out prompts, asked through the OpenAI chat API as a
user would, and kept one file per candidate so that a run cut short resumes where it stopped.

The same seed per prompt for every candidate (seed + prompt index, at the study's temperature):
candidates are compared on coupled samples. Every answer is scored by each set of judges
(study.judges) and keeps its finish reason (a length judge's cut answers tie). A candidate's
file is written whole once all its answers are scored, with its wall time and tokens beside it;
a file present means the candidate is done.
"""

import asyncio
import json
import time
from pathlib import Path

import httpx

from scorers import Scorer
from study.candidates import Candidate


def answers_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.jsonl"


def finished(folder: Path, name: str) -> bool:
    return answers_file(folder, name).is_file()


async def _answers(
    url: str, candidate: Candidate, prompts: list[list[dict]], sampling: dict, concurrency: int
) -> tuple[list[dict], float]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one(index: int, messages: list[dict]) -> dict:
            body = candidate.request() | {
                "messages": messages,
                "temperature": sampling["temperature"],
                "top_p": 1.0,
                "max_tokens": sampling["max_tokens"],
                "seed": sampling["seed"] + index,
            }
            async with limit:
                response = await client.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{candidate.name}: {response.status_code} {response.text[:500]}")
            data = response.json()
            return {
                "text": data["choices"][0]["message"]["content"] or "",
                "tokens": data["usage"]["completion_tokens"],
                "finish_reason": data["choices"][0]["finish_reason"],
            }

        began = time.perf_counter()
        rows = await asyncio.gather(*(one(i, m) for i, m in enumerate(prompts)))
        return list(rows), time.perf_counter() - began


def answer_candidate(
    url: str,
    candidate: Candidate,
    prompts: list[list[dict]],
    judges: dict[str, dict[str, Scorer]],
    folder: Path,
    sampling: dict,
    concurrency: int,
    references: list[str] | None,
) -> None:
    """Answer every prompt as candidate (sampling: seed, temperature, max_tokens), score the
    answers by every set of judges (judges[set][objective]; a pairwise judge compares each with
    `references`, the reference's answers, None for the reference itself), write its file."""
    rows, seconds = asyncio.run(_answers(url, candidate, prompts, sampling, concurrency))
    texts = [r["text"] for r in rows]
    asked = [messages[-1]["content"] for messages in prompts]

    def score(scorer: Scorer) -> list[float]:
        if scorer.compare is None:
            return scorer(asked, texts)
        return [0.5] * len(texts) if references is None else scorer.outcomes(asked, texts, references)

    rewards = {judged: {o: score(scorer) for o, scorer in scorers.items()} for judged, scorers in judges.items()}
    folder.mkdir(parents=True, exist_ok=True)
    staging = answers_file(folder, candidate.name).with_suffix(".tmp")
    with staging.open("w") as out:
        header = {"candidate": candidate.name, "request": candidate.request(), "seconds": seconds}
        out.write(json.dumps(header | {"tokens": sum(r["tokens"] for r in rows)}) + "\n")
        for index, (messages, row) in enumerate(zip(prompts, rows, strict=True)):
            line = {"prompt_index": index, "prompt": messages[-1]["content"], "response": row["text"]}
            line |= {"tokens": row["tokens"], "finish_reason": row["finish_reason"]}
            line |= {
                "rewards": {judged: {o: values[index] for o, values in by.items()} for judged, by in rewards.items()}
            }
            out.write(json.dumps(line) + "\n")
    staging.replace(answers_file(folder, candidate.name))


def read_answers(folder: Path, name: str) -> tuple[dict, list[dict]]:
    """(header: candidate, request, seconds, tokens; the answers in prompt order)."""
    header, *rows = (json.loads(line) for line in answers_file(folder, name).read_text().splitlines())
    return header, rows
