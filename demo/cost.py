"""What a piece of work costs: its wall seconds and the CPU seconds this process spent on it.

CPU seconds (time.process_time: every thread of this process, user and system) are what the
study reports as the cost of obtaining a model; on a machine shared with other work they stay
fair where wall time would not. A Timer measures one `with` block.
"""

import time


class Timer:
    def __enter__(self) -> "Timer":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self.wall = self.cpu = 0.0
        return self

    def __exit__(self, *_exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def seconds(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 1), "cpu_s": round(self.cpu, 1)}
