"""The README's throughput command runs: on the SmolLM2 demo's smoke build (its real model and
adapters, shared base), one batch size, one round (the full demo at three batch sizes and five
rounds takes 14 minutes or more)."""

import subprocess
import sys
from pathlib import Path

from tests.readme import commands


def test_the_readmes_throughput_command_prints_every_runners_ratio(smollm2_smoke_demo, tmp_path):
    (command,) = [c for c in commands() if "bench.throughput" in c]
    smaller = {
        "--subject smollm2": f"--manifest {smollm2_smoke_demo}",
        "--batches 1 8 32": "--batches 1",
        "--rounds 5": "--rounds 1",
    }
    for long, short in smaller.items():
        assert long in command, command
        command = command.replace(long, short)
    args = command.split()[1:]  # after .venv/bin/python
    done = subprocess.run([sys.executable, *args, "--data", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    assert "batch 1: single" in printed, printed
    for runner in ("one_policy_shared", "two_policy_shared", "all_shared"):
        assert runner in printed, printed
    assert Path(tmp_path / "engine.log").is_file()
