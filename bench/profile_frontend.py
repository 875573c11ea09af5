"""Where the API process spends its time under streaming load, for mpo-serve and for vLLM's
own server side by side (py-spy, sampling; no change to either server).

    .venv/bin/python -m bench.profile_frontend [--subject tiny] [--seconds 20] [--users 16]

Starts both servers on the same generated model folder (as bench item 3 does), keeps `--users`
streaming clients busy on each in turn, samples the API process (not the engine core) with
py-spy for `--seconds`, idle samples included, and prints per server how busy the main
thread (the event loop) is and the frames with the most own time (a loop waiting for work
shows up as its poll/run frame). Writes the raw
(collapsed) stacks, for a flame graph, into --out.
"""

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.load import Request, closed_loop
from bench.run import subject_manifest
from bench.servers import HttpServer, MpoServer, vllm_server
from bench.throughput import corpus_token_runs
from mixer.manifest import load_manifest
from mixer.needed import WEIGHTS_ARG
from server.engine import configure_environment, engine_kwargs, model_folder
from server.settings import Settings


def profile(pid: int, seconds: int, out: Path) -> None:
    """py-spy's collapsed stacks of one process, with idle samples, for `seconds`."""
    py_spy = Path(sys.executable).with_name("py-spy")  # installed beside this Python (bench extra)
    command = [
        str(py_spy) if py_spy.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
    ]
    command += ["--format", "raw", "--idle", "--nonblocking", "--output", str(out)]
    subprocess.run(command, check=True, capture_output=True)


def own_time(stacks: Path, top: int) -> tuple[int, list[tuple[str, float]]]:
    """Total samples and the `top` leaf frames by share of samples."""
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        leaves[leaf] += int(count)
        total += int(count)
    return total, [(leaf, n / total) for leaf, n in leaves.most_common(top)]


IDLE_LEAVES = ("Runner.run ", "_PollLikeSelector.select ", "_worker ")  # event loop / threads waiting


def main_thread_busy(stacks: Path) -> float:
    """Share of the main thread's samples (root frame: `python -m`'s entry) doing work, not
    waiting in the event loop: how close the API process is to being the bottleneck."""
    total = busy = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames[0].startswith("_run_module_as_main "):
            continue
        total += int(count)
        busy += 0 if frames[-1].startswith(IDLE_LEAVES) else int(count)
    return busy / total if total else float("nan")


def load_while_profiling(server: HttpServer, model: str, requests, users: int, extra, seconds: int, out: Path):
    """Streaming load on `server` from a thread while py-spy samples its API process."""
    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.is_set():
            closed_loop(server.url, model, requests, users, extra)

    worker = threading.Thread(target=keep_busy, daemon=True)
    worker.start()
    try:
        profile(server.process.pid, seconds, out)
    finally:
        stop.set()
        worker.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="tiny")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "mpo-serve" / "bench")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = subject_manifest(args.subject, args.data)
    manifest = load_manifest(manifest_path)
    settings = Settings(data_dir=args.data)
    folder = model_folder(manifest, settings)
    requests = [Request(p, 48) for p in corpus_token_runs(folder, 64, 16)]
    configure_environment(manifest.kv_cache_gib)
    with tempfile.TemporaryDirectory() as scratch:
        env = {"MPO_STORE_PATH": str(Path(scratch) / "weights.sqlite"), "MPO_ADMIN_TOKEN": None}
        with (
            MpoServer(manifest_path, args.data, Path(scratch) / "mpo.log", env) as mpo,
            vllm_server(engine_kwargs(manifest, folder, settings), Path(scratch) / "vllm.log") as vllm,
        ):
            extras = {"mpo": None, "vllm": {"vllm_xargs": {WEIGHTS_ARG: manifest.weight_vector()}}}
            for name, server in {"mpo": mpo, "vllm": vllm}.items():
                closed_loop(server.url, manifest.name, requests[:8], 4, extras[name])  # warm-up
                stacks = args.out / f"frontend-{args.subject}-{name}.txt"
                load_while_profiling(server, manifest.name, requests, args.users, extras[name], args.seconds, stacks)
                total, leaves = own_time(stacks, args.top)
                busy = main_thread_busy(stacks)
                print(f"\n{name}: main thread busy {100 * busy:.1f}% of the time (the rest waits for work);")
                print(f"  {total} samples of its API process (all threads), frames by own time:")
                for leaf, share in leaves:
                    print(f"  {100 * share:5.1f}%  {leaf}")
                print(f"  stacks: {stacks}")


if __name__ == "__main__":
    main()
