"""The SmolLM2 demo's preference pairs: what an alignment team already has for each objective,
on prompts no DPO run saw, shipped with the demo (demo/smollm2/pairs/, copied into the build).

Made as the DPO pairs are (build.preference_pairs: within a prompt's answers from the reference,
the judge's better by a clear gap, the chosen a real answer), on the held-out splits instead:
`heldout.jsonl` on the eval topics (the pair eval's table), `fit.jsonl` on the fit topics (a pair
fit's data). Unlike the DPO pairs both answers have ended: a pair line's answer is text, scored
as a complete answer (end-of-text appended), as a team's own pairs are; so the answers are
sampled at the temperature of the demo's evals, to PAIR_ANSWERS' length (the answers that end
within it are the ones that can be pairs). At most
PER_PROMPT pairs per prompt and objective, drawn at random among that prompt's pairs (seeded), so
a prompt with many answers far apart does not fill an objective alone (the pair eval's intervals
treat a prompt's pairs as one unit).

They are generated once from the reference (which is fixed: SmolLM2 from its GGUF file), not by
every build, and committed:

    .venv/bin/python -m demo.smollm2.pairs        # needs a built demo (its converted reference)
"""

import json
import random

from demo.rewards import OBJECTIVES
from demo.smollm2.build import PAIR_FILES, PAIRS_FOLDER, Smollm2DemoConfig, preference_pairs
from demo.smollm2.prompts import prompt_splits
from demo.smollm2.sampling import Answer, answer_text, sample_with_vllm

SPLITS = {"heldout": "eval", "fit": "fit"}  # pair file -> the prompt split it is drawn from
PROMPTS = 256  # per split at most (the fit split has 240): 4 answers each, as for DPO
PER_PROMPT = 2
# How the shipped pairs' answers were sampled (an eval's answers when they were made).
PAIR_ANSWERS = {"max_tokens": 320, "temperature": 0.7}
PER_OBJECTIVE = 96


def pairs_of(
    prompts: list[str], groups: list[list[Answer]], texts: list[list[str]], config: Smollm2DemoConfig, seed: int
) -> list[dict]:
    """Up to PER_OBJECTIVE pairs per objective, PER_PROMPT per prompt at most, as JSON lines' objects."""
    rng = random.Random(seed)
    index = {id(a): n for n, group in enumerate(groups) for a in group}
    text = {id(a): t for group, ts in zip(groups, texts, strict=True) for a, t in zip(group, ts, strict=True)}
    lines = []
    for name, setup in config.objectives.items():
        by_prompt: dict[int, list] = {}
        for chosen, rejected in preference_pairs(groups, texts, OBJECTIVES[name], setup):
            if chosen.ended and rejected.ended and text[id(chosen)] != text[id(rejected)]:
                by_prompt.setdefault(index[id(chosen)], []).append((chosen, rejected))
        picked = [
            pair
            for _, options in sorted(by_prompt.items())
            for pair in rng.sample(options, min(PER_PROMPT, len(options)))
        ]
        rng.shuffle(picked)
        for chosen, rejected in picked[:PER_OBJECTIVE]:
            prompt = prompts[index[id(chosen)]]
            lines.append(
                {
                    "messages": [{"role": "user", "content": prompt}],
                    "chosen": text[id(chosen)],
                    "rejected": text[id(rejected)],
                    "objective": name,
                }
            )
    return lines


def main() -> None:
    from transformers import AutoTokenizer

    from server.engine import offline_engine, shutdown_offline_engine
    from server.settings import Settings

    config = Smollm2DemoConfig()
    reference = Settings(demo="smollm2").demo_dir / "ref"
    tokenizer = AutoTokenizer.from_pretrained(reference)
    splits = prompt_splits(config.seed)
    engine = offline_engine(reference, "float32", 2048, config.seed)
    try:
        PAIRS_FOLDER.mkdir(exist_ok=True)
        for offset, file in enumerate(PAIR_FILES):
            split = SPLITS[file]
            prompts = splits[split][:PROMPTS]
            seed = config.seed + 17 + offset  # not the DPO samples' seeds
            longest, temperature = PAIR_ANSWERS["max_tokens"], PAIR_ANSWERS["temperature"]
            groups = sample_with_vllm(engine, tokenizer, prompts, config.samples_per_prompt, longest, seed, temperature)
            texts = [[answer_text(tokenizer, a) for a in group] for group in groups]
            lines = pairs_of(prompts, groups, texts, config, seed)
            (PAIRS_FOLDER / f"{file}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
            counts = {name: sum(line["objective"] == name for line in lines) for name in config.objectives}
            print(f"{PAIRS_FOLDER / file}.jsonl: {counts}", flush=True)
    finally:
        shutdown_offline_engine(engine)


if __name__ == "__main__":
    main()
