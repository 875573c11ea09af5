"""The study's table from its saved files, pure: win rates against the reference per objective
(95% interval over prompts, ties half), the Min, mean rewards, tokens per answer and serving
tokens/s from the answers; what each candidate cost to obtain from the measured costs.

Costs are CPU minutes spent to get from the reference to the candidate: the reference's
samples (shared by every policy and baseline), each DPO run it needs, its fit, its soup.
MPO's own cost is the fit alone once the policies exist; a retrained baseline pays a DPO run
for every balance of the objectives it is asked for.

`python -m study.table OUT` recomputes the table from OUT's answers and costs.json.
"""

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from evaluation.stats import pareto_front
from evaluation.summary import summarise_candidates
from study.answers import read_answers
from study.candidates import LABELS

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


def study_rows(folder: Path) -> tuple[list[str], list[dict]]:
    """(objectives, one row per finished candidate in the study's order), from folder's files."""
    meta = json.loads((folder / "study.json").read_text())
    costs = json.loads((folder / "costs.json").read_text())
    objectives = list(meta["objectives"])
    answers = {}
    for candidate in meta["candidates"]:
        if (folder / "answers" / f"{candidate['name']}.jsonl").is_file():
            answers[candidate["name"]] = read_answers(folder / "answers", candidate["name"])
    rewards = {
        name: {o: [[row["rewards"][o]] for row in rows] for o in objectives} for name, (_, rows) in answers.items()
    }
    summary = summarise_candidates(rewards, REFERENCE, {o: "higher" for o in objectives})
    means = {name: [s["objectives"][o]["reward"]["mean"] for o in objectives] for name, s in summary.items()}
    front = set(pareto_front(means, ["higher"] * len(objectives)))
    rows = []
    for candidate in meta["candidates"]:
        name = candidate["name"]
        if name not in answers:
            continue
        header, answered = answers[name]
        train, fit = candidate_costs(name, candidate["kind"], meta["policies"], costs, meta.get("best_fit"))
        worst = summary[name]["min"]["objective"]
        rows.append(
            {
                "name": name,
                "label": LABELS.get(name, name),
                "kind": candidate["kind"],
                "weights": candidate.get("weights"),
                "objectives": summary[name]["objectives"],
                "min": summary[name]["objectives"][worst]["win_rate"] | {"objective": worst},
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


def markdown(objectives: Sequence[str], rows: Sequence[dict]) -> str:
    head = ["candidate", *(f"win {o} (%)" for o in objectives), "**Min** (%)"]
    head += [f"mean {o}" for o in objectives] + ["tokens/answer", "tokens/s", "CPU-min train", "CPU-min fit/soup"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        name = row["label"] + (" *" if row["pareto"] else "")
        cells = [name, *(_pm(row["objectives"][o]["win_rate"], 100) for o in objectives)]
        cells.append(f"**{_pm(row['min'], 100)}** ({row['min']['objective']})")
        cells += [_pm(row["objectives"][o]["reward"], 1, 3 if o == "positive" else 1) for o in objectives]
        cells += [f"{row['tokens_per_answer']:.1f}", f"{row['tokens_per_s']:.0f}"]
        cells += [f"{row['cpu_min_training']:.1f}", f"{row['cpu_min_fit']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1])
    print(markdown(*study_rows(folder)))


if __name__ == "__main__":
    main()
