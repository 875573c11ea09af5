"""`python:<module>:<function>`: the user's own objective. The module is imported by name
(it must be importable by the server, e.g. on PYTHONPATH) or loaded from a `.py` file path.
The function takes (prompt, response) and returns a float; it may declare the attributes
`direction` ("higher" or "lower" is better; default "higher") and `units`."""

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from scorers.base import Prompt, Scorer, ScorerError


def _module(name: str):
    if name.endswith(".py"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ScorerError(f"python scorer file {name!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"mpo_user_scorer_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as err:  # noqa: BLE001 - the user's code: report whatever it raised
            raise ScorerError(f"python scorer file {name!r} failed to load: {type(err).__name__}: {err}") from None
        return module
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ScorerError(f"python scorer module {name!r} cannot be imported: {err}") from None


def python_scorer(spec: str, location: str) -> Scorer:
    module_name, _, function_name = location.rpartition(":")
    if not module_name or not function_name:
        raise ScorerError(f"scorer {spec!r} must be 'python:<module>:<function>'")
    function = getattr(_module(module_name), function_name, None)
    if not callable(function):
        raise ScorerError(f"scorer {spec!r}: {module_name!r} has no function {function_name!r}")
    direction = getattr(function, "direction", "higher")
    if direction not in ("higher", "lower"):
        raise ScorerError(f"scorer {spec!r}: direction must be 'higher' or 'lower', not {direction!r}")
    return Scorer(
        spec,
        "higher" if direction == "higher" else "lower",
        str(getattr(function, "units", "user-defined")),
        _per_pair(function),
    )


def _per_pair(function: Callable[[Prompt, str], float]) -> Callable[[Sequence[Prompt], Sequence[str]], list[float]]:
    def score_batch(prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        return [function(p, r) for p, r in zip(prompts, responses, strict=True)]

    return score_batch
