"""What the job commands (`mpo-serve fit`, `mpo-serve eval`) share: the admin connection,
a batch file read and started, the server's refusals as one line, a job followed to its end
(client.jobs) and its progress bars."""

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from client.jobs import AdminError, JobClient
from client.jobs import checked as client_checked


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="mpo-serve base URL")
    parser.add_argument("--token", default=os.environ.get("MPO_ADMIN_TOKEN"), help="admin token (MPO_ADMIN_TOKEN)")


def connect(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    return httpx.Client(base_url=args.server, headers=headers, timeout=120)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A refusal from the server ends the command with its message, not a traceback."""
    try:
        yield
    except AdminError as err:
        raise SystemExit(str(err)) from None


def checked(response: httpx.Response) -> dict:
    """The JSON body, or exit with the server's error message."""
    with one_line_errors():
        return client_checked(response)


def mixture_objectives(client: httpx.Client) -> dict[str, str]:
    """The manifest's objectives ({policy: scorer}), the default scorers of fit and eval."""
    objectives = checked(client.get("/admin/mixture")).get("objectives") or {}
    if not objectives:
        raise SystemExit("error: the mixture's manifest names no objectives: give them (objective=scorer ...)")
    return objectives


def start(jobs: JobClient, file: Path, options: dict) -> dict:
    """Start a job from a batch file: JSONL (one item a line, uploaded as is) or JSON (a list of
    items, or {items, options}; options given here win)."""
    if not file.is_file():
        raise SystemExit(f"error: {file} does not exist")
    text = file.read_text()
    if file.suffix == ".jsonl":
        with one_line_errors():
            return jobs.start_jsonl(file.name, text, options)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {file} is not JSON ({err}); JSONL files need the .jsonl suffix") from None
    if isinstance(body, list):
        body = {"items": body}
    body["options"] = {**body.get("options", {}), **options}
    with one_line_errors():
        return jobs.start(body)


def follow(jobs: JobClient, status: dict, show: Callable[[dict], None]) -> dict:
    """Follow the job to its end, showing each status; Ctrl-C cancels it on the server."""
    try:
        with one_line_errors():
            return jobs.follow(status, show)
    except KeyboardInterrupt:
        raise SystemExit(f"\ncancelled {jobs.kind} job {status['id']}") from None


@dataclass(frozen=True)
class Bar:
    """How a phase's progress reads from a job's status: `done` of `total`, in `unit`s."""

    done: str
    total: str
    unit: str


class PhaseBars:
    """One tqdm bar per phase of a job, on stderr; `postfix` adds a phase's live values."""

    def __init__(self, bars: dict[str, Bar], postfix: Callable[[dict], str | None] = lambda _: None) -> None:
        self.bars = bars
        self.postfix = postfix
        self.bar: tqdm | None = None
        self.phase: str | None = None

    def __call__(self, status: dict) -> None:
        progress = status.get("progress") or {}
        phase = status["phase"]
        spec = self.bars.get(phase)
        if phase != self.phase:
            self.close()
            self.phase = phase
            if spec is not None:
                self.bar = tqdm(total=progress.get(spec.total), desc=phase, unit=spec.unit, file=sys.stderr)
        if self.bar is not None and spec is not None:
            self.bar.update(progress.get(spec.done, 0) - self.bar.n)
            if text := self.postfix(status):
                self.bar.set_postfix_str(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
