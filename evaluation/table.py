"""The evaluation table as plain text: one line per candidate; win rate against the reference
per objective, the Min over objectives, mean rewards, and serving speed; for a pair eval,
preference accuracy and mean margin per objective."""

from collections.abc import Mapping


def _percent(summary: dict[str, float], width: int, sign: str = "") -> str:
    """A share as a percentage, ± half its 95% interval, right-aligned in `width` + 6 characters."""
    return f"{100 * summary['mean']:>{sign}{width}.1f} ±{50 * (summary['high'] - summary['low']):>4.1f}"


def bracketed(summary: Mapping[str, float], sign: str = "") -> str:
    """A share in points with its (asymmetric) interval in brackets; `sign` "+" for a difference."""
    return f"{100 * summary['mean']:{sign}.1f} [{100 * summary['low']:{sign}.1f}, {100 * summary['high']:{sign}.1f}]"


def format_table(result: dict) -> str:
    """result: an eval job's result (server.jobs.eval_jobs): {"objectives", "reference", "candidates"}."""
    if result.get("kind") == "pairs":
        return format_pair_table(result)
    objectives = list(result["objectives"])
    candidates = result["candidates"]
    width = max(12, *(len(c["name"]) + 1 for c in candidates))
    header = f"{'candidate':<{width}}"
    header += "".join(f"{'win ' + o:>{max(16, len(o) + 6)}}" for o in objectives) + f"{'Min [95%]':>21}"
    header += "".join(f"{'mean ' + o:>{max(22, len(o) + 7)}}" for o in objectives) + f"{'tok/ans':>8}{'tok/s':>8}"
    lines = [header]
    for candidate in candidates:
        line = f"{candidate['name']:<{width}}"
        for o in objectives:
            line += _percent(candidate["objectives"][o]["win_rate"], max(16, len(o) + 6) - 6)
        line += bracketed(candidate["min_interval"]).rjust(21)
        for o in objectives:
            reward = candidate["objectives"][o]["reward"]
            half = (reward["high"] - reward["low"]) / 2
            line += f"{reward['mean']:>{max(22, len(o) + 7) - 9}.3f} ±{half:>7.3f}"
        line += f"{candidate['mean_tokens']:>8.1f}{candidate['tokens_per_s']:>8.1f}"
        lines.append(line)
    lines.append(
        f"win rates in % against {result['reference']!r} (ties half) ± half the 95% interval; "
        f"Min = the worst objective's win rate [its 95% bootstrap over prompts]; tok/ans = mean tokens an answer; "
        f"{result['prompts']} prompts x {result['samples_per_prompt']} samples"
    )
    return "\n".join(lines + _paired(result, "win", "win_rate_minus_against", width, 16))


def format_pair_table(result: dict) -> str:
    """A pair eval's result: accuracy (%) and mean margin (nats) per objective, the Min of the accuracies."""
    objectives, candidates = result["objectives"], result["candidates"]
    width = max(12, *(len(c["name"]) + 1 for c in candidates))
    column = max(16, *(len(o) + 6 for o in objectives))
    header = f"{'candidate':<{width}}" + "".join(f"{'acc ' + o:>{column}}" for o in objectives) + f"{'Min':>8}"
    header += "".join(f"{'margin ' + o:>{column + 2}}" for o in objectives)
    lines = [header]
    for candidate in candidates:
        line = f"{candidate['name']:<{width}}"
        for o in objectives:
            line += _percent(candidate["objectives"][o]["accuracy"], column - 6)
        line += f"{100 * candidate['min']['accuracy']:>8.1f}"
        for o in objectives:
            margin = candidate["objectives"][o]["margin"]
            line += f"{margin['mean']:>{column - 6}.2f} ±{(margin['high'] - margin['low']) / 2:>5.2f}"
        lines.append(line)
    counts = ", ".join(f"{o} {n}" for o, n in result["pairs"].items())
    lines.append(
        "accuracy = % of pairs whose chosen answer the candidate prefers (its implicit reward; ties half) ± half the "
        f"95% interval over prompts; Min = the worst objective's; margin in nats of log pi/pi_ref; pairs: {counts}"
    )
    return "\n".join(lines + _paired(result, "acc", "accuracy_minus_against", width, column))


def _paired(result: dict, word: str, key: str, width: int, column: int) -> list[str]:
    """With options.against: every other candidate's paired difference from it, per objective."""
    against, objectives = result.get("against"), list(result["objectives"])
    if not against:
        return []
    with_min = all("min_minus_against" in c for c in result["candidates"])
    header = f"{'minus ' + against:<{width}}"
    header += "".join(f"{word + ' ' + o:>{max(column, len(o) + 7)}}" for o in objectives)
    lines = ["", header + (f"{'Min [95% bootstrap]':>26}" if with_min else "")]

    def resolved(d: dict) -> str:
        return "*" if d["low"] > 0 or d["high"] < 0 else " "

    for candidate in result["candidates"]:
        if candidate["name"] == against:
            continue
        line = f"{candidate['name']:<{width}}"
        for o in objectives:
            d = candidate["objectives"][o][key]
            line += _percent(d, max(column, len(o) + 7) - 7, sign="+") + resolved(d)
        if with_min:
            d = candidate["min_minus_against"]
            line += f"{100 * d['mean']:>+9.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]".ljust(25) + resolved(d)
        lines.append(line)
    what = "win rate" if word == "win" else "accuracy"
    lines.append(
        f"{what} minus {against}'s, in points, paired on the same prompts and seeds (pairs) ± half the 95% interval "
        "over prompts; * where the interval excludes 0"
        + ("; Min: the paired bootstrap over prompts (evaluation.bootstrap)" if with_min else "")
    )
    return lines
