"""The study's tables from its saved files, pure: per candidate the win rates against the
reference per objective (ties half; a length judge's cut answers tie, evaluation.stats), the Min
with its bootstrap interval over prompts, under the judges the candidates were trained on and
under held-out ones (study.judges), the best fit's paired difference of Min from every other
candidate (the same prompts and seeds: evaluation.bootstrap), the share of answers cut at the
token limit, tokens per answer and serving tokens/s, and what each candidate cost to obtain.

Costs are CPU minutes spent to get from the reference to the candidate: the reference's
samples (shared by every policy and baseline), each DPO run it needs, its fit, its soup.
MPO's own cost is the fit alone once the policies exist; a retrained baseline pays a DPO run
for every balance of the objectives it is asked for.

`python -m study.table OUT` recomputes the tables from OUT's answers and costs.json.
"""

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from evaluation.stats import pareto_front
from evaluation.summary import summarise_candidates
from evaluation.table import bracketed
from study.answers import read_answers
from study.candidates import LABELS
from study.judges import TITLES

REFERENCE = "ref"


def candidate_costs(name: str, kind: str, policies: Sequence[str], costs: Mapping[str, Mapping], best_fit: str | None):
    """(training, fitting or souping) CPU seconds of candidate name. Work shared by several
    trainings (the reference's samples; the states below the adapted layers, absent from runs
    made before that cache) is counted in full for each: it is what obtaining that one costs."""
    cpu = {key: value["cpu_s"] for key, value in costs.items()}
    shared = cpu["sampling"] + cpu.get("frozen_layers", 0.0)
    all_policies = shared + sum(cpu[f"dpo:{p}"] for p in policies)
    if kind == "reference":
        return 0.0, 0.0
    if kind == "policy":
        return shared + cpu[f"dpo:{name}"], 0.0
    if kind == "retrained":
        return cpu["sampling"] + cpu.get("retrain:frozen_layers", 0.0) + cpu[f"retrain:{name}"], 0.0
    if kind == "mixture":
        return all_policies, 0.0
    if kind == "fit":
        return all_policies, cpu[f"fit:{name}"]
    if kind == "soup":
        fit = cpu[f"fit:{best_fit}"] if name == "soup_best" and best_fit else 0.0
        return all_policies, fit + cpu[f"soup:{name}"]
    raise ValueError(f"unknown candidate kind {kind!r}")


def _from_best(difference: dict[str, float]) -> dict[str, float]:
    """A candidate's Min minus the best fit's, turned into the best fit's minus the candidate's
    (the same resamples: the percentiles swap)."""
    return difference | {"mean": -difference["mean"], "low": -difference["high"], "high": -difference["low"]}


def study_rows(folder: Path) -> tuple[list[str], list[dict]]:
    """(objectives, one row per finished candidate in the study's order), from folder's files."""
    meta = json.loads((folder / "study.json").read_text())
    costs = json.loads((folder / "costs.json").read_text())
    objectives, judges, best = list(meta["objectives"]), meta["judges"], meta.get("best_fit")
    answers = {}
    for candidate in meta["candidates"]:
        if (folder / "answers" / f"{candidate['name']}.jsonl").is_file():
            answers[candidate["name"]] = read_answers(folder / "answers", candidate["name"])
    cut = {name: [[row["finish_reason"] == "length"] for row in rows] for name, (_, rows) in answers.items()}
    against = best if best in answers else None
    summaries = {}
    for judged, described in judges.items():
        rewards = {
            name: {o: [[row["rewards"][judged][o]] for row in rows] for o in objectives}
            for name, (_, rows) in answers.items()
        }
        directions = {o: described[o]["direction"] for o in objectives}
        lengths = {o for o in objectives if described[o]["length"]}
        pairwise = {o for o in objectives if described[o].get("pairwise")}
        summaries[judged] = summarise_candidates(rewards, REFERENCE, directions, against, cut, lengths, pairwise)
    training = summaries["training"]
    means = {name: [s["objectives"][o]["reward"]["mean"] for o in objectives] for name, s in training.items()}
    front = set(pareto_front(means, [judges["training"][o]["direction"] for o in objectives]))
    rows = []
    for candidate in meta["candidates"]:
        name = candidate["name"]
        if name not in answers:
            continue
        header, answered = answers[name]
        train, fit = candidate_costs(name, candidate["kind"], meta["policies"], costs, best)
        by_judges = {}
        for judged, summary in summaries.items():
            mine = summary[name]
            by_judges[judged] = {
                "objectives": mine["objectives"],
                "min": mine["min_interval"] | {"objective": mine["min"]["objective"]},
                "best_minus_this": _from_best(mine["min_minus_against"]) if against and name != against else None,
            }
        rows.append(
            {
                "name": name,
                "label": LABELS.get(name, name),
                "kind": candidate["kind"],
                "weights": candidate.get("weights"),
                **by_judges["training"],
                "judges": by_judges,
                "cut_share": sum(c for (c,) in cut[name]) / len(answered),
                "tokens_per_answer": header["tokens"] / len(answered),
                "tokens_per_s": header["tokens"] / header["seconds"],
                "cpu_min_training": train / 60,
                "cpu_min_fit": fit / 60,
                "pareto": name in front,
            }
        )
    return objectives, rows


def _pm(summary: Mapping[str, float], scale: float = 1.0, digits: int = 1) -> str:
    half = (summary["high"] - summary["low"]) / 2 * scale
    return f"{summary['mean'] * scale:.{digits}f} ± {half:.{digits}f}"


def _difference(found: dict | None) -> str:
    """A paired difference of Min with its interval, bold where the interval excludes 0."""
    if found is None:
        return "–"
    text = bracketed(found, "+")
    return f"**{text}**" if found["low"] > 0 or found["high"] < 0 else text


def markdown(objectives: Sequence[str], rows: Sequence[dict]) -> str:
    """The main table (training judges' win rates, the Min and the best fit's paired difference
    of Min under every set of judges, cut answers, speed, cost) and one table per other set of
    judges (its win rates; the training judges' mean rewards beside the held-out ones)."""
    sets = list(rows[0]["judges"])
    head = ["candidate", *(f"win {o} (%)" for o in objectives), "**Min** (%) [95%]"]
    head += [f"Min, {TITLES.get(j, j)}" for j in sets[1:]]
    head += [f"best fit − this: Min, {TITLES.get(j, j)}" for j in sets]
    head += ["cut (%)", "tokens/answer", "tokens/s", "CPU-min train", "CPU-min fit/soup"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        judged = row["judges"]
        cells = [row["label"] + (" *" if row["pareto"] else "")]
        cells += [_pm(row["objectives"][o]["win_rate"], 100) for o in objectives]
        cells.append(f"**{bracketed(row['min'])}** ({row['min']['objective']})")
        cells += [f"{bracketed(judged[j]['min'])} ({judged[j]['min']['objective']})" for j in sets[1:]]
        cells += [_difference(judged[j]["best_minus_this"]) for j in sets]
        cells += [f"{100 * row['cut_share']:.0f}", f"{row['tokens_per_answer']:.1f}", f"{row['tokens_per_s']:.0f}"]
        cells += [f"{row['cpu_min_training']:.1f}", f"{row['cpu_min_fit']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for j in sets[1:]:
        head = ["candidate", *(f"win {o}, {TITLES.get(j, j)} (%)" for o in objectives)]
        head += [f"mean {o} (training judge)" for o in objectives] if j == "held_out" else []
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            cells = [row["label"], *(_pm(row["judges"][j]["objectives"][o]["win_rate"], 100) for o in objectives)]
            if j == "held_out":
                cells += [_pm(row["objectives"][o]["reward"], 1, 3 if o == "positive" else 1) for o in objectives]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1])
    print(markdown(*study_rows(folder)))


if __name__ == "__main__":
    main()
