"""`mpo-serve fit FILE --server URL`: upload a batch, follow the job, print and plot the result."""

import argparse
import json
import sys
from pathlib import Path

from client.jobs import JobClient
from server.cli.eval_command import parse_objectives
from server.cli.job_commands import Bar, PhaseBars, add_connection_arguments, connect, follow, mixture_objectives, start

RESULT_FIELDS = (
    "id",
    "phase",
    "error",
    "method",
    "weights",
    "objective",
    "expected_scores",
    "start",
    "ess",
    "rounds",
    "result_weight_set",
)
OPTION_FLAGS = (
    "method",
    "samples_per_prompt",
    "max_tokens",
    "temperature",
    "iterations",
    "step",
    "adversary_step",
    "batch_size",
    "seed",
    "beta",
    "normalise",
    "scale",
    "family",
    "resample_every",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="batch: JSONL (one item a line) or JSON ({items, options} or a list)")
    add_connection_arguments(parser)
    parser.add_argument(
        "--method",
        choices=["mpo", "judged", "pairs"],
        help="mpo (MPO's F; the default for prompts), judged (the worst objective's expected reward under the "
        "mixture, by the scorers), pairs (preference pairs; the default for a batch of pairs)",
    )
    parser.add_argument("--samples-per-prompt", type=int)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--temperature", type=float, help="judged: what answers are sampled at (default: an eval's)")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--step", type=float)
    parser.add_argument("--adversary-step", type=float, help="judged and pairs: the objectives' player's step")
    parser.add_argument(
        "--resample-every", type=int, help="judged: sample again from the mixture every N iterations (0: never)"
    )
    parser.add_argument(
        "--scale", choices=["win", "standard"], help="judged: rewards as win probabilities or standardised"
    )
    parser.add_argument("--family", choices=["served", "sequence"], help="judged: the family of mixtures optimised")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--beta", type=float, help="KL strength: mpo's explicit rewards (from --scorers or given), the pair fit's"
    )
    parser.add_argument(
        "--scorers",
        nargs="*",
        help="mpo: policy=scorer for every policy, a fit on these scorers' rewards of the sampled responses "
        "(explicit rewards, needs --beta) instead of implicit rewards; judged: objective=scorer (default: the "
        "manifest's objectives); --scorers alone: the manifest's objectives",
    )
    parser.add_argument(
        "--normalise",
        choices=["none", "standard"],
        help="standard: implicit rewards standardised per objective over the fit's samples (the paper's ablation)",
    )
    parser.add_argument("--activate", action="store_true", help="make the fitted weights the default")
    parser.add_argument("--plot", type=Path, help="where to save the plot (default: fit-<job>.png)")


def _options(args: argparse.Namespace, client) -> dict:
    options = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k) is not None}
    if args.scorers is not None:
        options["scorers"] = parse_objectives(args.scorers) if args.scorers else mixture_objectives(client)
    if args.activate:
        options["activate"] = True
    return options


def _current(status: dict) -> str | None:
    """The fit's current weights and objective (F for mpo, the worst objective's for the others), beside
    the iterations' bar."""
    current = status.get("current") or {}
    weights = " ".join(f"{k}={v:.3f}" for k, v in (current.get("weights") or {}).items())
    objective = current.get("objective")
    name = "F" if (status.get("params") or {}).get("method") in (None, "mpo") else "min"
    ess = f" ESS={current['ess']:.2f}" if current.get("ess") is not None else ""
    return f"{weights} {name}={objective:.4f}{ess}" if objective is not None else weights or None


def progress() -> PhaseBars:
    """Responses while sampling or scoring, iterations while fitting."""
    responses = Bar("samples_done", "samples_total", "response")
    return PhaseBars(
        {"sampling": responses, "scoring": responses, "fitting": Bar("iteration", "iterations", "iteration")},
        postfix=_current,
    )


def run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        jobs = JobClient(client, "fit")
        status = start(jobs, args.file, _options(args, client))
        job = status["id"]
        print(f"fit job {job} started", file=sys.stderr)
        bars = progress()
        status = follow(jobs, status, bars)
        bars.close()
        print(json.dumps({k: status.get(k) for k in RESULT_FIELDS}, indent=2))
        plot = client.get(f"/admin/fit/{job}/plot.png")
        if plot.status_code == 200:
            path = args.plot or Path(f"fit-{job}.png")
            path.write_bytes(plot.content)
            print(f"plot saved to {path}", file=sys.stderr)
        return 0 if status["phase"] == "succeeded" else 1
