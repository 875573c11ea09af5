"""The evaluation table as plain text: one line per candidate; win rate against the reference
per objective, the Min over objectives, mean rewards, and serving speed; for a pair eval,
preference accuracy and mean margin per objective."""


def format_table(result: dict) -> str:
    """result: an eval job's result (server.jobs.eval_jobs): {"objectives", "reference", "candidates"}."""
    if result.get("kind") == "pairs":
        return format_pair_table(result)
    objectives = list(result["objectives"])
    candidates = result["candidates"]
    width = max(12, *(len(c["name"]) + 1 for c in candidates))
    header = f"{'candidate':<{width}}"
    header += "".join(f"{'win ' + o:>{max(16, len(o) + 6)}}" for o in objectives) + f"{'Min':>8}"
    header += "".join(f"{'mean ' + o:>{max(22, len(o) + 7)}}" for o in objectives) + f"{'tok/ans':>8}{'tok/s':>8}"
    lines = [header]
    for candidate in candidates:
        line = f"{candidate['name']:<{width}}"
        for o in objectives:
            win = candidate["objectives"][o]["win_rate"]
            line += f"{100 * win['mean']:>{max(16, len(o) + 6) - 6}.1f} ±{50 * (win['high'] - win['low']):>4.1f}"
        line += f"{100 * candidate['min']['win_rate']:>8.1f}"
        for o in objectives:
            reward = candidate["objectives"][o]["reward"]
            half = (reward["high"] - reward["low"]) / 2
            line += f"{reward['mean']:>{max(22, len(o) + 7) - 9}.3f} ±{half:>7.3f}"
        line += f"{candidate['mean_tokens']:>8.1f}{candidate['tokens_per_s']:>8.1f}"
        lines.append(line)
    lines.append(
        f"win rates in % against {result['reference']!r} (ties half) ± half the 95% interval; "
        f"Min = the worst objective's win rate; tok/ans = mean tokens an answer; "
        f"{result['prompts']} prompts x {result['samples_per_prompt']} samples"
    )
    return "\n".join(lines)


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
            accuracy = candidate["objectives"][o]["accuracy"]
            line += f"{100 * accuracy['mean']:>{column - 6}.1f} ±{50 * (accuracy['high'] - accuracy['low']):>4.1f}"
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
    return "\n".join(lines)
