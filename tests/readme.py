"""The README's code blocks, read by the tests that run them (tests/test_readme_commands.py
lists which test runs each command)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str, text: str | None = None) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text() if text is None else text) if lang == language]


def commands(text: str | None = None) -> list[str]:
    """Every command of the README's bash blocks: one per line, continuations joined, comments dropped."""
    found = []
    for block in blocks("bash", text):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                found.append(re.sub(r"\s+", " ", command))
    return found


def python_example() -> str:
    """The README's one Python block (the openai client against the demo on localhost:8000)."""
    (example,) = blocks("python")
    return example
