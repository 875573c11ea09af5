"""What it costs to resolve (best fit - uniform mixture) in a finished study, and whether a second
sample per prompt or more prompts buys it more cheaply.

    .venv/bin/python -m bench.study_precision --study STUDY_OUT [--more 144]

On the study's own server (its store holds the fits' weight sets), the reference, the uniform
mixture and the best fit answer, as the study answers (study.answers):
  second  the study's prompts again, with other seeds (a second sample per prompt);
  new     `--more` further held-out prompts, one sample each, seeded as a longer study would.
Both cost the same answers. For each set of judges it prints the paired interval of Min(best fit)
- Min(uniform) (evaluation.bootstrap.min_difference) on the study's answers alone, with the second
samples, with the new prompts and with both, and, scaling each half-width by one over the square root of the
answers, the answers and the minutes (at this run's seconds per answer of the three candidates)
each way needs for +-3 points. The answers are kept in STUDY_OUT/precision/ and reused by a second
run.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from evaluation.summary import summarise_candidates
from scorers import get_scorer
from study.answers import answer_candidate, finished, read_answers
from study.judges import judge_sets
from study.run import Study, StudyConfig
from study.table import REFERENCE

SECOND_SEED = 1_000_000  # far from every seed + prompt index a study uses
GOAL = 3.0  # points: the half-width the study should reach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, required=True, help="a finished `mpo-serve study --out` folder")
    parser.add_argument("--more", type=int, default=144, help="new prompts (and second samples) per candidate")
    args = parser.parse_args()
    seconds = answer_more(args.study, args.more)
    print(f"\nthe three candidates answer in {seconds:.2f} s per prompt-sample")
    print("| judges | answers | way | best fit - uniform: Min [95%] | half-width | answers for +-3 | minutes more |")
    print("|---|---|---|---|---|---|---|")
    for row in intervals(args.study, args.more, seconds):
        print(
            f"| {row['judges']} | {row['answers']} | {row['way']} | {row['mean']:+.1f} [{row['low']:+.1f}, "
            f"{row['high']:+.1f}] | {row['half']:.1f} | {row['needed']:.0f} | {row['minutes']:.0f} |"
        )


def _compared(out: Path) -> tuple[dict, tuple[str, ...]]:
    meta = json.loads((out / "study.json").read_text())
    if not meta.get("best_fit"):
        raise SystemExit(f"{out} holds no finished study (no best fit in study.json)")
    return meta, (REFERENCE, "uniform", meta["best_fit"])


def answer_more(out: Path, more: int) -> float:
    """The three candidates' second samples and new prompts (what is missing of them); the
    seconds they take per prompt-sample, all three together."""
    meta, names = _compared(out)
    settings = ("eval_prompts", "seed", "max_tokens", "temperature", "concurrency")
    config = replace(StudyConfig(), **{k: meta["config"][k] for k in settings})
    study = Study(Path(meta["demo"]), out, config)
    fits = json.loads((out / "fits.json").read_text())
    candidates = [c for c in study._candidates(fits, None) if c.name in names]
    lines = (study.demo / "eval_prompts.jsonl").read_text().splitlines()
    first = config.eval_prompts
    if not 0 < more <= min(first, len(lines) - first):
        raise SystemExit(f"--more must be 1 to {min(first, len(lines) - first)} (the study's prompts, the rest)")
    plans = {
        "second": ([json.loads(line)["messages"] for line in lines[:more]], config.seed + SECOND_SEED),
        "new": ([json.loads(line)["messages"] for line in lines[first : first + more]], config.seed + first),
    }
    judges = {
        judged: {o: get_scorer(spec) for o, spec in specs.items()}
        for judged, specs in judge_sets(study.objectives).items()
    }
    folders = _folders(out)
    todo = [(plan, c) for plan in plans for c in candidates if not finished(folders[plan], c.name)]
    if todo:
        with study._server(with_best_soup=False) as server:
            for plan, candidate in todo:
                prompts, seed = plans[plan]
                print(f"  {plan}: answers of {candidate.name}", flush=True)
                sampling = {"seed": seed, "temperature": config.temperature, "max_tokens": config.max_tokens}
                references = None
                if candidate.name != REFERENCE:
                    references = [r["response"] for r in read_answers(folders[plan], REFERENCE)[1]]
                answer_candidate(
                    server.url, candidate, prompts, judges, folders[plan], sampling, config.concurrency, references
                )
    seconds = sum(read_answers(folder, n)[0]["seconds"] for folder in folders.values() for n in names)
    return seconds / (2 * more)


def _folders(out: Path) -> dict[str, Path]:
    return {plan: out / "precision" / plan for plan in ("second", "new")}


def intervals(out: Path, more: int, seconds: float) -> list[dict]:
    """Per set of judges and way (the study alone, + second samples, + new prompts, + both):
    Min(best fit) - Min(uniform) in points with its paired interval, the answers per candidate,
    and the answers and minutes (at `seconds` per prompt-sample) that +-3 would take."""
    meta, names = _compared(out)
    folders = _folders(out)
    first = meta["config"]["eval_prompts"]
    base = {n: read_answers(out / "answers", n)[1] for n in names}
    second = {n: read_answers(folders["second"], n)[1][:more] for n in names}
    new = {n: read_answers(folders["new"], n)[1][:more] for n in names}
    ways = {
        "study": {n: [[row] for row in base[n]] for n in names},
        "second sample": {
            n: [[a, b] for a, b in zip(base[n][:more], second[n], strict=True)] + [[a] for a in base[n][more:]]
            for n in names
        },
        "new prompts": {n: [[row] for row in base[n] + new[n]] for n in names},
    }
    ways["both"] = {n: ways["second sample"][n] + [[row] for row in new[n]] for n in names}
    rows = []
    for judged, described in meta["judges"].items():
        objectives = list(described)
        directions = {o: described[o]["direction"] for o in objectives}
        lengths = {o for o in objectives if described[o]["length"]}
        for way, grouped in ways.items():
            rewards = {
                n: {o: [[r["rewards"][judged][o] for r in group] for group in groups] for o in objectives}
                for n, groups in grouped.items()
            }
            cut = {
                n: [[r["finish_reason"] == "length" for r in group] for group in groups]
                for n, groups in grouped.items()
            }
            summary = summarise_candidates(rewards, REFERENCE, directions, names[2], cut, lengths)
            diff = summary["uniform"]["min_minus_against"]  # uniform - best: its negative is best - uniform
            low, high = -100 * diff["high"], -100 * diff["low"]
            answers = sum(len(group) for group in grouped["uniform"])
            half = (high - low) / 2
            needed = answers * (half / GOAL) ** 2
            rows.append(
                {
                    "judges": judged,
                    "way": way,
                    "answers": answers,
                    "mean": -100 * diff["mean"],
                    "low": low,
                    "high": high,
                    "half": half,
                    "needed": needed,
                    "minutes": max(0.0, needed - first) * seconds / 60,
                }
            )
    return rows


if __name__ == "__main__":
    main()
