"""`mpo-serve fit FILE --server URL`: upload a batch, follow the job, print and plot the result."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

RESULT_FIELDS = ("id", "phase", "error", "weights", "objective", "expected_scores", "start", "result_weight_set")
OPTION_FLAGS = ("samples_per_prompt", "max_tokens", "iterations", "step", "batch_size", "seed", "beta")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="batch: JSONL (one item a line) or JSON ({items, options} or a list)")
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="mpo-serve base URL")
    parser.add_argument("--token", default=os.environ.get("MPO_ADMIN_TOKEN"), help="admin token (MPO_ADMIN_TOKEN)")
    parser.add_argument("--samples-per-prompt", type=int)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--step", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--beta", type=float, help="KL strength, for batches with reward scores")
    parser.add_argument("--activate", action="store_true", help="make the fitted weights the default")
    parser.add_argument("--plot", type=Path, help="where to save the plot (default: fit-<job>.png)")


def _options(args: argparse.Namespace, base: dict) -> dict:
    options = dict(base)
    options.update({k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k) is not None})
    if args.activate:
        options["activate"] = True
    return options


def _start(client: httpx.Client, args: argparse.Namespace) -> dict:
    text = args.file.read_text()
    if args.file.suffix == ".jsonl":
        files = {"file": (args.file.name, text.encode(), "application/x-ndjson")}
        return _checked(client.post("/admin/fit", files=files, data={"options": json.dumps(_options(args, {}))}))
    body = json.loads(text)
    if isinstance(body, list):
        body = {"items": body}
    body["options"] = _options(args, body.get("options", {}))
    return _checked(client.post("/admin/fit", json=body))


def _checked(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError):
            message = response.text
        raise SystemExit(f"error {response.status_code}: {message}")
    return response.json()


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _progress_line(status: dict) -> str:
    progress = status.get("progress") or {}
    phase = status["phase"]
    if phase in ("sampling", "scoring"):
        done, total = progress.get("samples_done", 0), progress.get("samples_total", 0)
        return f"{phase:<9} {_bar(done, total)} {done}/{total} responses"
    done, total = progress.get("iteration", 0), progress.get("iterations", 0)
    current = status.get("current") or {}
    weights = " ".join(f"{k}={v:.3f}" for k, v in (current.get("weights") or {}).items())
    objective = current.get("objective")
    value = f" F={objective:.4f}" if objective is not None else ""
    return f"{phase:<9} {_bar(done, total)} {done}/{total} iterations {weights}{value}"


def run(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    with httpx.Client(base_url=args.server, headers=headers, timeout=120) as client:
        status = _start(client, args)
        job = status["id"]
        print(f"fit job {job} started", file=sys.stderr)
        try:
            while status["phase"] not in ("succeeded", "failed", "cancelled"):
                print("\r" + _progress_line(status).ljust(100), end="", file=sys.stderr, flush=True)
                time.sleep(0.5)
                status = _checked(client.get(f"/admin/fit/{job}"))
        except KeyboardInterrupt:
            client.delete(f"/admin/fit/{job}")
            print(f"\ncancelled fit job {job}", file=sys.stderr)
            return 130
        print("\r" + _progress_line(status).ljust(100), file=sys.stderr)
        print(json.dumps({k: status.get(k) for k in RESULT_FIELDS}, indent=2))
        plot = client.get(f"/admin/fit/{job}/plot.png")
        if plot.status_code == 200:
            path = args.plot or Path(f"fit-{job}.png")
            path.write_bytes(plot.content)
            print(f"plot saved to {path}", file=sys.stderr)
        return 0 if status["phase"] == "succeeded" else 1
