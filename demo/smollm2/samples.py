"""The reference's samples that the policies were trained on, kept beside the demo.

One line per answer: its prompt (and index), the token ids DPO needs (prompt, answer, whether
it ended, log pi_ref(answer)), the text and its score on every objective. `mpo-serve study`
retrains its baselines (linear, max-min) on exactly these samples and scores, as a user who
retrained instead of mixing would.
"""

import json
from pathlib import Path

from demo.rewards import OBJECTIVES
from demo.smollm2.sampling import Answer

SAMPLES_FILE = "reference_samples.jsonl"


def write_reference_samples(path: Path, prompts: list[str], groups: list[list[Answer]], texts: list[list[str]]) -> None:
    with path.open("w") as out:
        for index, (prompt, group, group_texts) in enumerate(zip(prompts, groups, texts, strict=True)):
            for answer, text in zip(group, group_texts, strict=True):
                scores = {name: judge(text) for name, judge in OBJECTIVES.items()}
                row = {"prompt_index": index, "prompt": prompt, "text": text, "scores": scores}
                row |= {"prompt_ids": answer.prompt_ids, "tokens": answer.tokens}
                row |= {"ended": answer.ended, "logprob": answer.logprob}
                out.write(json.dumps(row) + "\n")


def read_reference_samples(path: Path) -> tuple[list[list[Answer]], list[list[str]], list[list[dict[str, float]]]]:
    """(answers, texts, scores), grouped by prompt in file order."""
    groups: dict[int, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        groups.setdefault(row["prompt_index"], []).append(row)
    rows = [groups[i] for i in sorted(groups)]
    answers = [[Answer(r["prompt_ids"], r["tokens"], r["ended"], r["logprob"]) for r in g] for g in rows]
    return answers, [[r["text"] for r in g] for g in rows], [[r["scores"] for r in g] for g in rows]
