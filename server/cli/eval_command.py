"""`mpo-serve eval FILE --candidates ... --server URL`: evaluate candidates on held-out prompts
through a running server; a progress bar, the table, the plot and the answers saved."""

import argparse
import json
import sys
from pathlib import Path

from client.jobs import JobClient
from evaluation.table import format_table
from server.cli.job_commands import (
    Bar,
    PhaseBars,
    add_connection_arguments,
    checked,
    connect,
    follow,
    mixture_objectives,
    start,
)

OPTION_FLAGS = ("reference", "samples_per_prompt", "max_tokens", "temperature", "top_p", "seed", "against")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        help="prompts: JSONL (one {prompt} or {messages} a line), or preference pairs"
        " ({prompt | messages, chosen, rejected, objective}: a pair eval), or JSON",
    )
    parser.add_argument(
        "--candidates",
        nargs="+",
        required=True,
        help="model ids (mixture, component, baseline, '<mixture>@<set id>') or weights "
        "'[label=]policy:weight,policy:weight'",
    )
    parser.add_argument(
        "--objectives",
        nargs="+",
        help="objective=scorer, e.g. positive=sentiment concise=concise helpful=reward_model:/models/rm "
        "(default: the manifest's objectives)",
    )
    parser.add_argument("--reference", help="model id the win rates compare with (default: the reference)")
    parser.add_argument("--samples-per-prompt", type=int)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--against",
        help="a candidate's name: every other candidate's win rate (a pair eval: accuracy) is also shown as its "
        "paired difference from this one's, on the same prompts and seeds (pairs)",
    )
    add_connection_arguments(parser)
    parser.add_argument("--plot", type=Path, help="where to save the plot (default: eval-<job>.png)")
    parser.add_argument("--answers", type=Path, help="where to save the answers as JSONL (default: eval-<job>.jsonl)")
    parser.add_argument("--json", type=Path, help="also save the full result as JSON here")


def parse_candidate(text: str) -> str | dict:
    """'mpo-demo@3' stays a model id; '[label=]a:0.5,b:0.5' becomes explicit weights."""
    if ":" not in text:
        return text
    label, _, spec = text.rpartition("=")
    weights = {}
    for part in spec.split(","):
        policy, _, value = part.partition(":")
        try:
            weights[policy.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"error: candidate {text!r}: weight {value!r} of {policy!r} is not a number") from None
    return {"weights": weights, **({"name": label} if label else {})}


def parse_objectives(pairs: list[str]) -> dict[str, str]:
    objectives = {}
    for pair in pairs:
        name, sep, scorer = pair.partition("=")
        if not sep or not name or not scorer:
            raise SystemExit(f"error: objective {pair!r} must be name=scorer")
        objectives[name] = scorer
    return objectives


def options(args: argparse.Namespace, client) -> dict:
    chosen = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k) is not None}
    return {
        "candidates": [parse_candidate(c) for c in args.candidates],
        "objectives": parse_objectives(args.objectives) if args.objectives else mixture_objectives(client),
        **chosen,
    }


def progress() -> PhaseBars:
    """Answers while generating, (candidate, objective) pairs while scoring."""
    return PhaseBars(
        {
            "generating": Bar("responses_done", "responses_total", "answer"),
            "scoring": Bar("scored", "to_score", "objective"),
        },
        postfix=lambda status: (status.get("progress") or {}).get("candidate"),
    )


def run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        jobs = JobClient(client, "eval")
        status = start(jobs, args.file, options(args, client))
        job = status["id"]
        print(f"eval job {job}: {len(status['candidates'])} candidates {status['candidates']}", file=sys.stderr)
        bars = progress()
        status = follow(jobs, status, bars)
        bars.close()
        if status["phase"] != "succeeded":
            print(f"eval job {job} {status['phase']}: {status.get('error')}", file=sys.stderr)
            return 1
        result = status["result"]
        print(format_table(result))
        print(f"wall time {status['elapsed_s']:.0f} s", file=sys.stderr)
        saved = {
            args.plot or Path(f"eval-{job}.png"): client.get(f"/admin/eval/{job}/plot.png"),
            args.answers or Path(f"eval-{job}.jsonl"): client.get(f"/admin/eval/{job}/answers.jsonl"),
        }
        for path, response in saved.items():
            if response.status_code >= 400:
                checked(response)  # exits with the server's message
            path.write_bytes(response.content)
            print(f"saved {path}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(status, indent=2))
            print(f"saved {args.json}", file=sys.stderr)
        return 0
