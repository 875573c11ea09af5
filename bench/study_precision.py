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
    meta = json.loads((args.study / "study.json").read_text())
    config = StudyConfig(eval_prompts=meta["config"]["eval_prompts"], seed=meta["config"]["seed"])
    if (config.max_tokens, config.temperature) != (meta["config"]["max_tokens"], meta["config"]["temperature"]):
        raise SystemExit(f"{args.study} answered with other settings than the study's defaults: {meta['config']}")
    study = Study(Path(meta["demo"]), args.study, config)
    best = meta["best_fit"]
    fits = json.loads((args.study / "fits.json").read_text())
    names = (REFERENCE, "uniform", best)
    candidates = [c for c in study._candidates(fits, None) if c.name in names]
    lines = (study.demo / "eval_prompts.jsonl").read_text().splitlines()
    first = config.eval_prompts
    if first + args.more > len(lines):
        raise SystemExit(f"the demo has {len(lines)} held-out prompts: at most --more {len(lines) - first}")
    plans = {
        "second": ([json.loads(line)["messages"] for line in lines[: args.more]], config.seed + SECOND_SEED),
        "new": ([json.loads(line)["messages"] for line in lines[first : first + args.more]], config.seed + first),
    }
    judges = {
        judged: {o: get_scorer(spec) for o, spec in specs.items()}
        for judged, specs in judge_sets(study.objectives).items()
    }
    folders = {plan: args.study / "precision" / plan for plan in plans}
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
    report(args.study, meta, names, folders, args.more)


def _grouped(folder: Path, name: str, count: int | None = None) -> list[dict]:
    return read_answers(folder, name)[1][:count]


def report(out: Path, meta: dict, names: tuple[str, ...], folders: dict[str, Path], more: int) -> None:
    study_folder = out / "answers"
    first = meta["config"]["eval_prompts"]
    seconds = sum(read_answers(f, n)[0]["seconds"] for f in folders.values() for n in names)
    per_answer_triple = seconds / (2 * more)  # the three candidates' seconds for one more answer each
    print(f"\nbest fit {names[2]}; the three candidates answer in {per_answer_triple:.2f} s per prompt-sample")
    print("| judges | answers | way | best fit - uniform: Min [95%] | half-width | answers for +-3 | minutes more |")
    print("|---|---|---|---|---|---|---|")
    for judged, described in meta["judges"].items():
        objectives = list(described)
        directions = {o: described[o]["direction"] for o in objectives}
        lengths = {o for o in objectives if described[o]["length"]}
        base = {n: _grouped(study_folder, n) for n in names}
        ways = {
            "study": {n: [[row] for row in rows] for n, rows in base.items()},
            "second sample": {
                n: [[row, extra] for row, extra in zip(base[n][:more], _grouped(folders["second"], n), strict=True)]
                + [[row] for row in base[n][more:]]
                for n in names
            },
            "new prompts": {n: [[row] for row in base[n] + _grouped(folders["new"], n)] for n in names},
        }
        ways["both"] = {n: ways["second sample"][n] + ways["new prompts"][n][first:] for n in names}
        for way, grouped in ways.items():
            rewards = {
                n: {o: [[r["rewards"][judged][o] for r in g] for g in gs] for o in objectives}
                for n, gs in grouped.items()
            }
            cut = {n: [[r["finish_reason"] == "length" for r in g] for g in gs] for n, gs in grouped.items()}
            summary = summarise_candidates(rewards, REFERENCE, directions, names[2], cut, lengths)
            diff = summary["uniform"]["min_minus_against"]  # uniform - best: swap for best - uniform
            low, high, mean = -diff["high"] * 100, -diff["low"] * 100, -diff["mean"] * 100
            answers = sum(len(g) for g in grouped["uniform"])
            half = (high - low) / 2
            needed = answers * (half / GOAL) ** 2
            minutes = max(0.0, needed - first) * per_answer_triple / 60
            print(
                f"| {judged} | {answers} | {way} | {mean:+.1f} [{low:+.1f}, {high:+.1f}] | {half:.1f} | "
                f"{needed:.0f} | {minutes:.0f} |"
            )


if __name__ == "__main__":
    main()
