"""What the job commands (`mpo-serve fit`, `mpo-serve eval`) share: the admin connection,
uploading a batch file, errors as one line, following a job to its end, and its progress bars."""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

ENDED = ("succeeded", "failed", "cancelled")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="mpo-serve base URL")
    parser.add_argument("--token", default=os.environ.get("MPO_ADMIN_TOKEN"), help="admin token (MPO_ADMIN_TOKEN)")


def connect(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    return httpx.Client(base_url=args.server, headers=headers, timeout=120)


def checked(response: httpx.Response) -> dict:
    """The JSON body, or exit with the server's error message."""
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError):
            message = response.text
        raise SystemExit(f"error {response.status_code}: {message}")
    return response.json()


def mixture_objectives(client: httpx.Client) -> dict[str, str]:
    """The manifest's objectives ({policy: scorer}), the default scorers of fit and eval."""
    objectives = checked(client.get("/admin/mixture")).get("objectives") or {}
    if not objectives:
        raise SystemExit("error: the mixture's manifest names no objectives: give them (objective=scorer ...)")
    return objectives


def start(client: httpx.Client, route: str, file: Path, options: dict) -> dict:
    """Start a job from a batch file: JSONL (one item a line, uploaded as is) or JSON (a list of
    items, or {items, options}; options given here win)."""
    if not file.is_file():
        raise SystemExit(f"error: {file} does not exist")
    text = file.read_text()
    if file.suffix == ".jsonl":
        files = {"file": (file.name, text.encode(), "application/x-ndjson")}
        return checked(client.post(route, files=files, data={"options": json.dumps(options)}))
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {file} is not JSON ({err}); JSONL files need the .jsonl suffix") from None
    if isinstance(body, list):
        body = {"items": body}
    body["options"] = {**body.get("options", {}), **options}
    return checked(client.post(route, json=body))


def follow(client: httpx.Client, route: str, status: dict, show: Callable[[dict], None]) -> dict:
    """Poll the job until it ends, showing each status; Ctrl-C cancels it on the server."""
    job = status["id"]
    try:
        while status["phase"] not in ENDED:
            show(status)
            time.sleep(0.5)
            status = checked(client.get(f"{route}/{job}"))
    except KeyboardInterrupt:
        client.delete(f"{route}/{job}")
        raise SystemExit(f"\ncancelled job {job}") from None
    show(status)
    return status


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
