"""The SmolLM2 demo's user prompts (prompts.yaml), split by topic into DPO, fit and eval.

A topic's prompts all land in one split, chosen by a seeded shuffle of the topics, so the
held-out evaluation asks about things no policy was trained or fitted on.
"""

import random
from pathlib import Path

import yaml

SOURCE = Path(__file__).parent / "prompts.yaml"
SPLITS = {"dpo": 0.6, "fit": 0.15, "eval": 0.25}


def prompt_splits(seed: int = 0) -> dict[str, list[str]]:
    """{'dpo': [...], 'fit': [...], 'eval': [...]}: disjoint by topic, each list shuffled."""
    data = yaml.safe_load(SOURCE.read_text())
    topics = list(dict.fromkeys(data["topics"]))
    rng = random.Random(seed)
    rng.shuffle(topics)
    splits: dict[str, list[str]] = {}
    start = 0
    for index, (name, share) in enumerate(SPLITS.items()):
        end = len(topics) if index == len(SPLITS) - 1 else start + round(share * len(topics))
        prompts = [template.format(topic=topic) for topic in topics[start:end] for template in data["templates"]]
        rng.shuffle(prompts)
        splits[name] = prompts
        start = end
    return splits
