"""What may import what, as docs/architecture.md's table says, checked against every import in
the code (read with ast, function-level imports too), and the checker itself checked on a
forbidden import, so that the test can fail."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
FIRST_PARTY = (
    "mixer",
    "weights",
    "store",
    "scorers",
    "evaluation",
    "demo",
    "server",
    "client",
    "launchers",
    "study",
    "bench",
    "tests",
)


def rules(doc: str) -> list[tuple[str, list[str], list[str]]]:
    """(code, the first-party modules it may import, the libraries it must not) from the rows
    of the table under 'What may import what': `a`, `b.c` names in backticks; 'anything'."""
    section = doc.split("## What may import what", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = [re.findall(r"`([^`]+)`", c) for c in cells]
        allowed = list(FIRST_PARTY) if cells[1].startswith("anything") else names[1]
        rows.append((names[0][0], [a for a in allowed if a not in names[2]], names[2]))
    return rows


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str) -> list[str]:
    """Every module the source imports (relative imports made absolute)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found += [f"{base}.{alias.name}" for alias in node.names] if base in FIRST_PARTY else [base]
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str, table: list[tuple[str, list[str], list[str]]]) -> list[str]:
    """The imports of `module` that the table forbids: of this project, what its row (the longest
    matching name) does not allow; of libraries, what any matching row names."""
    matching = [row for row in table if within(module, row[0])]
    if not matching:
        return [f"{module}: no row of the table covers it"]
    code, allowed, own = max(matching, key=lambda row: len(row[0]))
    libraries = {name for row in matching for name in row[2] if name.split(".")[0] not in FIRST_PARTY}
    never = sorted(set(own) | libraries)  # a package's forbidden libraries bind its modules too
    found = []
    for target in imports(source, module):
        if module.split(".")[-1].startswith("test_") and target.split(".")[-1].startswith("test_"):
            found.append(f"{module} imports {target}: test modules take helpers from helper modules")
        if within(target, code):
            continue
        if target.split(".")[0] in FIRST_PARTY and not any(within(target, a) for a in allowed):
            found.append(f"{module} imports {target}: `{code}` may import only {allowed}")
        if any(within(target, n) for n in never):
            found.append(f"{module} imports {target}: `{code}` must not import {never}")
    return found


def python_files() -> list[Path]:
    return sorted(p for package in FIRST_PARTY for p in (ROOT / package).rglob("*.py"))


def test_every_import_follows_the_rules():
    table = rules(DOC.read_text())
    assert len(table) >= 10, "the table of docs/architecture.md was not found"
    broken = [v for path in python_files() for v in violations(module_name(path), path.read_text(), table)]
    assert not broken, "\n".join(broken)


def test_the_rules_catch_a_forbidden_import():
    table = rules(DOC.read_text())
    bad = {
        "server.serving.chat": "from server.api.errors import APIError\n",
        "server.jobs.fit_jobs": "def f():\n    from fastapi import HTTPException\n",
        "mixer.manifest": "from weights.solver import fit_scores\n",
        "mixer.lora.factors": "import vllm\n",
        "mixer.math": "import fastapi\n",
        "tests.server.test_replicas": "from tests.server.test_shutdown import greedy\n",
        "tests.postgres": "from bench.servers import free_port\n",
        "store.weight_store": "from . import schema\nfrom ..server import settings\n",
    }
    for module, source in bad.items():
        assert violations(module, source, table), f"{module}: {source!r} was allowed"
    assert not violations("server.api.app", "from server.jobs.fit_jobs import FitJobs\n", table)


def test_no_status_outside_the_api_layer():
    """HTTP statuses are chosen in server/api only: the services (and server/'s own modules)
    name no APIError and no status code. (server/cli reads statuses, as the server's client.)"""
    pattern = re.compile(r"APIError|status_code|HTTPException|HTTPStatus")
    services = [*(ROOT / "server" / "serving").rglob("*.py"), *(ROOT / "server" / "jobs").rglob("*.py")]
    outside = [*services, *(ROOT / "server").glob("*.py")]
    offenders = [str(p.relative_to(ROOT)) for p in outside if pattern.search(p.read_text())]
    assert not offenders, offenders
