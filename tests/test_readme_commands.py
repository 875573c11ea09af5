"""Every command in the README is run by a test, and this table says which: a command added to
the README without a test that runs it fails here. The test command is `.ci/run`'s exactly."""

from pathlib import Path

from tests.readme import commands

ROOT = Path(__file__).resolve().parent.parent
DEMO_COMMANDS = "tests/demo/test_smollm2_smoke.py::test_the_readmes_example_and_job_commands_run_on_the_demo"

# command (as the README writes it) -> what runs it
RUN_BY = {
    "scripts/setup.sh && .venv/bin/mpo-serve serve": "CI runs scripts/setup.sh; `mpo-serve serve` with no manifest "
    "serves the built demo: tests/demo/test_tiny_demo.py::test_serve_without_manifest_serves_the_chosen_demo",
    "scripts/setup.sh --dev && scripts/check": ".ci/run (checked below)",
    "D=~/.cache/mpo-serve/demos/smollm2; head -32 $D/fit_prompts.jsonl > prompts.jsonl": DEMO_COMMANDS,
    "MPO_ADMIN_TOKEN=... .venv/bin/mpo-serve fit prompts.jsonl --server http://localhost:8000 --samples-per-prompt 8"
    " --max-tokens 48 --activate": DEMO_COMMANDS,
    "MPO_ADMIN_TOKEN=... .venv/bin/mpo-serve fit prompts.jsonl --server http://localhost:8000 --method judged": (
        DEMO_COMMANDS
    ),
    "MPO_ADMIN_TOKEN=... .venv/bin/mpo-serve fit $D/pairs_fit.jsonl --server http://localhost:8000": DEMO_COMMANDS,
    "D=~/.cache/mpo-serve/demos/smollm2; head -96 $D/eval_prompts.jsonl > eval96.jsonl": DEMO_COMMANDS,
    "MPO_ADMIN_TOKEN=... .venv/bin/mpo-serve eval eval96.jsonl --server http://localhost:8000 --seed 0 --candidates"
    " positive concise plain uniform=positive:1,concise:1,plain:1 mpo-demo --against uniform": DEMO_COMMANDS,
    ".venv/bin/mpo-serve study --out study-run": "the `smoke_study` fixture (tests/conftest.py), with --smoke",
    ".venv/bin/python -m bench.throughput --subject smollm2 --batches 1 8 32 --modes shared --rounds 5": (
        "tests/bench/test_throughput_command.py, on the demo's smoke build"
    ),
}


def test_every_readme_command_is_run_by_a_test():
    unrun = [c for c in commands() if c not in RUN_BY]
    assert not unrun, f"README commands no test runs (add the test, then its row to RUN_BY): {unrun}"
    gone = [c for c in RUN_BY if c not in commands()]
    assert not gone, f"RUN_BY names commands the README no longer has: {gone}"


def test_ci_runs_the_readmes_test_command():
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == [commands()[1]]


def test_commands_are_read_with_continuations_joined_and_comments_dropped():
    text = "```bash\nA=1; echo $A   # a note\nrun this \\\n    --flag\n```\n```python\nprint(1)\n```\n"
    assert commands(text) == ["A=1; echo $A", "run this --flag"]
