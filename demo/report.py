"""The build report: what each model's answers to held-out prompts score on every objective.

Per model: the mean of every objective's score with a 95% interval (normal approximation over
answers: mean +- 1.96 s / sqrt(n)), the mean answer length in words, and the shares of empty,
degenerate (demo.rewards.is_degenerate) and too short answers. Pure Python, no model involved.
"""

from collections.abc import Callable, Mapping, Sequence

from demo.rewards import MIN_ANSWER_WORDS, is_degenerate, word_count
from evaluation.stats import mean_interval


def summarise_answers(answers: Sequence[str], objectives: Mapping[str, Callable[[str], float]]) -> dict:
    """One model's row of the report."""
    words = [word_count(a) for a in answers]
    return {
        "scores": {name: mean_interval([judge(a) for a in answers]) for name, judge in objectives.items()},
        "mean_words": sum(words) / len(words),
        "share_empty": sum(w == 0 for w in words) / len(words),
        "share_degenerate": sum(map(is_degenerate, answers)) / len(answers),
        "share_min_words": sum(w >= MIN_ANSWER_WORDS for w in words) / len(words),
    }


def format_report(report: Mapping[str, dict]) -> str:
    """A plain-text table: one line per model, mean [95% interval] per objective."""
    objectives = list(next(iter(report.values()))["scores"])
    header = f"{'model':<12}" + "".join(f"{o:>26}" for o in objectives)
    header += f"{'words':>8}{'empty':>7}{'degen.':>8}{f'>={MIN_ANSWER_WORDS} words':>11}"
    lines = [header]
    for model, row in report.items():
        line = f"{model:<12}"
        for objective in objectives:
            s = row["scores"][objective]
            line += f"{s['mean']:>10.3f} [{s['low']:>6.3f}, {s['high']:>6.3f}]"
        line += f"{row['mean_words']:>8.1f}{row['share_empty']:>7.0%}{row['share_degenerate']:>8.0%}"
        line += f"{row['share_min_words']:>11.0%}"
        lines.append(line)
    return "\n".join(lines)
