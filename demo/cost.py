"""What a piece of work costs: its wall seconds and the CPU seconds spent on it.

CPU seconds (every thread, user and system) are what the study reports as the cost of
obtaining a model; on a machine shared with other work they stay fair where wall time would
not. A Timer measures one `with` block: this process's CPU seconds, and with children=True
also those of the processes it started that are still running when the block ends (a vLLM
engine doing the block's work: shut it down after the block, not inside it).
"""

import time

import psutil


def _cpu_seconds(children: bool) -> float:
    seconds = time.process_time()
    if children:
        for child in psutil.Process().children(recursive=True):
            try:
                seconds += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
    return seconds


class Timer:
    def __init__(self, children: bool = False) -> None:
        self.children = children

    def __enter__(self) -> "Timer":
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds(self.children)
        self.wall = self.cpu = 0.0
        return self

    def __exit__(self, *_exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu_seconds(self.children) - self._cpu

    def seconds(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 1), "cpu_s": round(self.cpu, 1)}
