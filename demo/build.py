"""Build an embedded demo by name (cached; a matching build is reused at once)."""

from pathlib import Path
from types import ModuleType

DEMOS = ("smollm2", "tiny")


def _module(name: str) -> ModuleType:
    if name == "smollm2":
        from demo.smollm2 import build
    elif name == "tiny":
        from demo.tiny import build
    else:
        raise ValueError(f"unknown demo {name!r}; choose one of {list(DEMOS)}")
    return build


def is_built(name: str, folder: Path) -> bool:
    return _module(name).is_built(folder)


def build_demo(name: str, folder: Path, force: bool = False) -> Path:
    """The demo's manifest path, building the demo into folder first unless already built."""
    return _module(name).build(folder, force=force)
