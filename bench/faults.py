"""The fault bench: two replicas behind the project's nginx on PostgreSQL, under a bounded mixed
load (streamed chats, plain completions, weight swaps, a fit), with faults injected one after
another. Not a test: it prints what each fault cost.

    .venv/bin/python -m bench.faults                  # the tiny demo; about 15 minutes on 2 cores
    .venv/bin/python -m bench.faults --demo smollm2   # the SmolLM2 demo (slower to restart)

Each fault has a phase of its own: load starts, the fault comes FAULT_AT_S seconds in, the load
goes on until the fault is over (a stopped replica healthy again, the database back, the
overload ended) and SETTLE_S more. The bench is the replicas' supervisor, as compose or
Kubernetes would be: a replica that exits is started again at once, on the same port.

- replica SIGKILL: a replica killed outright (no shutdown code runs);
- replica SIGTERM: a rolling restart's stop (server.api.shutdown: it drains, exits 0);
- engine kill: the replica's vLLM engine process killed (the replica exits 1 for a restart);
- PostgreSQL restart: the database stopped (a fast shutdown) for DB_DOWN_S, then started;
- 3x overload: three times as many clients as the two replicas hold (decoding and waiting),
  for OVERLOAD_S: what is beyond gets 503 server_is_overloaded with Retry-After.

Per fault it prints the requests sent, succeeded and failed, and of the failures how many the
fault held (began between the injection and GRACE_S after the fault was over: a failure
outside that window would be a defect), the p99 latency of the requests that succeeded, and
the weight history: every set stored before the phase still there unchanged, and every set
added during it one that the load asked for (a swap, the fit; a swap whose answer was lost
to the fault may or may not have been stored, never half).
"""

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from client.jobs import AdminError, JobClient
from launchers.processes import MpoServer, free_port
from launchers.services import NginxProxy, PostgresServer
from server.cli.main import demo_manifest
from server.settings import Settings

ADMIN_TOKEN = "fault-bench-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAULT_AT_S = 5.0
SETTLE_S = 5.0
GRACE_S = 2.0
DB_DOWN_S = 10.0
OVERLOAD_S = 10.0
CLIENTS = 4  # the steady load: each sends its next request when the last one is answered
MAX_NUM_SEQS, MAX_WAITING = 4, 4  # per replica: what it decodes at once, and what may wait
SWAP_EVERY_S = 2.0
BACK_OFF_S = 1.0  # a client waits this long after a failure (the openai package's retries wait 0.5-8 s)
FIT = {"options": {"samples_per_prompt": 8, "max_tokens": 16, "iterations": 200}}


@dataclass
class Outcome:
    kind: str  # stream, plain, swap, fit
    began: float
    ended: float = 0.0
    ok: bool = False
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.began


@dataclass
class Phase:
    fault: str
    outcomes: list[Outcome] = field(default_factory=list)
    injected: float = 0.0
    over: float = 0.0  # when the fault had passed (replica healthy again, database back, overload ended)
    notes: list[str] = field(default_factory=list)
    asked: list[dict] = field(default_factory=list)  # weights of every swap sent, answered or not
    acknowledged: set[int] = field(default_factory=set)  # weight sets the load was told were stored

    def held(self, outcome: Outcome) -> bool:
        return self.injected <= outcome.began <= self.over + GRACE_S or self.injected <= outcome.ended <= self.over


class Replica:
    """A replica and its supervisor: started again, on the same port, whenever it exits."""

    def __init__(self, name: str, manifest: Path, folder: Path, env: dict) -> None:
        self.name, self.manifest, self.folder, self.env = name, manifest, folder, env
        self.port = free_port()
        self.exits: list[tuple[float, int]] = []
        self.server = self._start()
        self.server.wait_ready()

    def _start(self) -> MpoServer:
        log = self.folder / f"{self.name}-{len(self.exits)}.log"
        return MpoServer(
            self.manifest, self.folder / self.name, log, self.env | {"MPO_REPLICA_NAME": self.name}, self.port
        )

    async def supervise(self) -> float:
        """Wait for the replica to exit, start it again and wait until it is healthy; returns
        when it was."""
        while self.server.process.poll() is None:
            await asyncio.sleep(0.1)
        self.exits.append((time.monotonic(), self.server.process.returncode))
        self.server = self._start()
        await asyncio.to_thread(self.server.wait_ready)
        return time.monotonic()

    def stop(self) -> None:
        self.server.stop()


class Bench:
    def __init__(self, manifest: Path | None, folder: Path, demo: str) -> None:
        self.folder = folder
        manifest = manifest or demo_manifest(Settings(demo=demo))  # built once, before the replicas start
        self.postgres = PostgresServer()
        env = {
            "MPO_ADMIN_TOKEN": ADMIN_TOKEN,
            "MPO_STORE_URL": self.postgres.url(),
            "MPO_MAX_NUM_SEQS": str(MAX_NUM_SEQS),
            "MPO_MAX_WAITING": str(MAX_WAITING),
            "MPO_JOB_LEASE_S": "5",
            "MPO_DRAIN_S": "20",
        }
        (folder / "replica-a").mkdir(parents=True, exist_ok=True)
        (folder / "replica-b").mkdir(parents=True, exist_ok=True)
        # Each replica's engine (and its EngineCore, pinned beside it by the server) on a core of
        # its own, as on machines of their own: two engines on both cores starved a restarting
        # replica's start for minutes.
        self.replicas = [
            Replica(name, manifest, folder, env | {"VLLM_CPU_OMP_THREADS_BIND": core})
            for name, core in (("replica-a", "0"), ("replica-b", "1"))
        ]
        self.nginx = NginxProxy([r.port for r in self.replicas])
        self.url = self.nginx.url
        mixture = httpx.get(f"{self.url}/v1/mixture", timeout=30).json()
        self.model, self.policies = mixture["id"], mixture["policies"]

    def stop(self) -> None:
        self.nginx.stop()
        for replica in self.replicas:
            replica.stop()
        self.postgres.stop()

    # -- the load -------------------------------------------------------------------------------

    async def _request(self, http: httpx.AsyncClient, phase: Phase, kind: str) -> Outcome:
        outcome = Outcome(kind, time.monotonic())
        try:
            if kind == "stream":
                body = {
                    "model": self.model,
                    "messages": [{"role": "user", "content": "Tell me about the sea."}],
                    "max_tokens": 32,
                    "stream": True,
                }
                async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
                whole = bool(lines) and lines[-1] == "data: [DONE]" and not any('"error"' in line for line in lines)
                outcome.ok = response.status_code == 200 and whole
                outcome.detail = f"{response.status_code}" + ("" if whole else " cut or error event")
            else:
                body = {"model": self.model, "prompt": "The sea is", "max_tokens": 16}
                response = await http.post("/v1/completions", json=body)
                outcome.ok, outcome.detail = response.status_code == 200, str(response.status_code)
        except httpx.HTTPError as err:
            outcome.detail = type(err).__name__
        outcome.ended = time.monotonic()
        phase.outcomes.append(outcome)
        return outcome

    async def _clients(self, phase: Phase, count: int, until: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as http:

            async def client(n: int) -> None:
                while not until.is_set():
                    if not (await self._request(http, phase, "stream" if n % 2 == 0 else "plain")).ok:
                        await asyncio.sleep(BACK_OFF_S)

            await asyncio.gather(*(client(n) for n in range(count)))

    async def _swaps(self, phase: Phase, until: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=ADMIN, timeout=60) as http:
            n = 0
            while not until.is_set():
                n += 1
                first = 0.2 + 0.6 * (n % 2)
                weights = {self.policies[0]: first} | {
                    p: (1 - first) / (len(self.policies) - 1) for p in self.policies[1:]
                }
                phase.asked.append(weights)
                outcome = Outcome("swap", time.monotonic())
                try:
                    response = await http.put("/admin/weights", json={"weights": weights})
                    outcome.ok, outcome.detail = response.status_code == 200, str(response.status_code)
                    if outcome.ok:
                        phase.acknowledged.add(response.json()["active_weight_set"])
                except httpx.HTTPError as err:
                    outcome.detail = type(err).__name__
                outcome.ended = time.monotonic()
                phase.outcomes.append(outcome)
                await asyncio.sleep(SWAP_EVERY_S)

    async def _fit(self, phase: Phase) -> None:
        """One short fit, started through the load balancer (on either replica), followed to its end."""
        await asyncio.sleep(1.0)
        outcome = Outcome("fit", time.monotonic())
        try:
            status = await asyncio.to_thread(self._fit_to_its_end)
            outcome.ok = status["phase"] == "succeeded"
            outcome.detail = status["phase"] + (f": {status['error']}" if status.get("error") else "")
            if outcome.ok:
                phase.acknowledged.add(status["result_weight_set"])
        except AdminError as err:
            outcome.detail = str(err.status)
        except httpx.HTTPError as err:
            outcome.detail = type(err).__name__
        outcome.ended = time.monotonic()
        phase.outcomes.append(outcome)

    def _fit_to_its_end(self) -> dict:
        prompts = [{"prompt": text} for text in ("The sea", "Life is", "A cat", "Tomorrow")]
        with httpx.Client(base_url=self.url, headers=ADMIN, timeout=60) as http:
            jobs = JobClient(http, "fit")
            # a status asked of a replica that is away: ask again
            return jobs.follow(
                jobs.start({"items": prompts, **FIT}), retry=(httpx.HTTPError, ValueError, AdminError), timeout=600
            )

    # -- the faults -----------------------------------------------------------------------------

    async def _inject(self, phase: Phase) -> None:
        await asyncio.sleep(FAULT_AT_S)
        phase.injected = time.monotonic()
        target = self.replicas[0]
        if phase.fault == "replica SIGKILL":
            target.server.kill()
            phase.over = await target.supervise()
        elif phase.fault == "replica SIGTERM":
            target.server.process.terminate()
            phase.over = await target.supervise()
        elif phase.fault == "engine kill":
            target.server.engine_process().kill()
            phase.over = await target.supervise()
        elif phase.fault == "PostgreSQL restart":
            await asyncio.to_thread(self.postgres.pause)
            await asyncio.sleep(DB_DOWN_S)
            await asyncio.to_thread(self.postgres.resume)
            phase.over = time.monotonic()
        elif phase.fault == "3x overload":
            capacity = len(self.replicas) * (MAX_NUM_SEQS + MAX_WAITING)
            stop = asyncio.Event()
            extra = asyncio.create_task(self._clients(phase, 3 * capacity, stop))
            await asyncio.sleep(OVERLOAD_S)
            stop.set()
            await extra
            phase.over = time.monotonic()
        for when, code in target.exits:
            if when >= phase.injected:
                phase.notes.append(f"{target.name} exited {code} after {when - phase.injected:.1f} s")
        if phase.fault in ("replica SIGKILL", "replica SIGTERM", "engine kill"):
            phase.notes.append(f"healthy again {phase.over - phase.injected:.1f} s after the fault")

    async def run_phase(self, fault: str) -> dict:
        phase = Phase(fault)
        before = self.history()
        until = asyncio.Event()
        load = [
            asyncio.create_task(self._clients(phase, CLIENTS, until)),
            asyncio.create_task(self._swaps(phase, until)),
            asyncio.create_task(self._fit(phase)),
        ]
        await self._inject(phase)
        await asyncio.sleep(SETTLE_S)
        until.set()
        await asyncio.gather(*load)
        return self._report(phase, before, self.history())

    def history(self) -> list[dict]:
        """The weight history through a replica that answers (the store may just be back)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"{self.url}/admin/weights/history", headers=ADMIN, timeout=30)
                if response.status_code == 200:
                    return response.json()["data"]
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("no replica answers the weight history")
            time.sleep(0.5)

    def _report(self, phase: Phase, before: list[dict], after: list[dict]) -> dict:
        requests = [o for o in phase.outcomes if o.kind in ("stream", "plain")]
        failed = [o for o in phase.outcomes if not o.ok]
        survivors = [o.seconds for o in requests if o.ok]
        kept = {s["id"]: _stored(s) for s in before}
        now = {s["id"]: _stored(s) for s in after}
        lost_or_changed = [i for i, s in kept.items() if now.get(i) != s]
        added = [s for s in after if s["id"] not in kept]
        asked = [json.dumps(w, sort_keys=True) for w in phase.asked]
        unexplained = [
            s["id"]
            for s in added
            if s["id"] not in phase.acknowledged and json.dumps(s["weights"], sort_keys=True) not in asked
        ]
        return {
            "fault": phase.fault,
            "sent": len(phase.outcomes),
            "succeeded": len(phase.outcomes) - len(failed),
            "failed": len(failed),
            "failed_held": sum(phase.held(o) for o in failed),
            "failed_outside": [asdict(o) for o in failed if not phase.held(o)],
            "failures": sorted({f"{o.kind} {o.detail}" for o in failed}),
            "p99_s": float(np.percentile(survivors, 99)) if survivors else None,
            "history_before": len(before),
            "history_after": len(after),
            "history_lost_or_changed": lost_or_changed,
            "history_added": len(added),
            "history_added_unexplained": unexplained,
            "notes": phase.notes,
        }


def _stored(weight_set: dict) -> dict:
    return {k: weight_set[k] for k in ("weights", "source", "created", "job_id", "params")}


FAULTS = ["replica SIGKILL", "replica SIGTERM", "engine kill", "PostgreSQL restart", "3x overload"]


def table(rows: list[dict]) -> str:
    lines = [
        "| fault | sent | succeeded | failed (held by the fault) | p99 of the succeeded | weight history |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        outside = len(row["failed_outside"])
        failed = f"{row['failed']} ({row['failed_held']})" + (f", **{outside} outside**" if outside else "")
        p99 = f"{row['p99_s']:.2f} s" if row["p99_s"] is not None else "-"
        history = (
            f"{row['history_before']} kept, {row['history_added']} added as asked"
            if not row["history_lost_or_changed"] and not row["history_added_unexplained"]
            else f"**lost {row['history_lost_or_changed']}, unexplained {row['history_added_unexplained']}**"
        )
        lines.append(f"| {row['fault']} | {row['sent']} | {row['succeeded']} | {failed} | {p99} | {history} |")
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> list[dict]:
    bench = await asyncio.to_thread(Bench, args.manifest, args.folder, args.demo)
    rows = []
    try:
        for fault in FAULTS:
            print(f"-- {fault}", flush=True)
            row = await bench.run_phase(fault)
            print(json.dumps({k: row[k] for k in ("sent", "succeeded", "failed", "failed_held", "failures", "notes")}))
            rows.append(row)
    finally:
        await asyncio.to_thread(bench.stop)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", default="tiny", choices=["tiny", "smollm2"], help="the demo the replicas serve")
    parser.add_argument("--manifest", type=Path, help="serve this mixture instead of a demo")
    parser.add_argument("--folder", type=Path, default=Path("bench-results/faults"), help="data and logs")
    parser.add_argument("--out", type=Path, default=Path("bench-results/faults.json"))
    args = parser.parse_args()
    args.folder = args.folder.resolve()
    args.folder.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    rows = asyncio.run(_main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    print(f"\n{time.monotonic() - began:.0f} s; every row in {args.out}")


if __name__ == "__main__":
    main()
