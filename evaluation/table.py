"""The evaluation table as plain text: one line per candidate; win rate against the reference
per objective, the Min over objectives, mean rewards, and serving speed."""


def format_table(result: dict) -> str:
    """result: an eval job's result (server.jobs.eval_jobs): {"objectives", "reference", "candidates"}."""
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
