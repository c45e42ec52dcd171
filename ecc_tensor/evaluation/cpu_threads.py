"""Keep torch's CPU thread count at the cores other processes leave free.

torch's OpenMP threads spin while they wait for each other. On a machine whose cores are all
busy with other work, a thread that is descheduled stalls the others, and a run slows down
many times over rather than in proportion (the default sweep on a 2-core machine with one
CPU-bound process beside it: 6 min 28 s with 2 threads against 2 min 45 s with 1, and 2 min
12 s alone with 2). Passive waiting avoids the collapse but costs as much on a quiet machine
(4 min 14 s). So the sweep measures, between trials, how much CPU time the *other* processes
took (``/proc/stat`` minus this process's own time) and uses the cores that are left.
"""

from __future__ import annotations

import os
import time

import torch


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time.
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuThreads:
    """``adjust()`` sets ``torch.set_num_threads`` to the cores left free by other processes
    since the previous call (never more than the count torch started with, never fewer than 1)."""

    def __init__(self, busy=_busy_seconds, own=_own_seconds, clock=time.monotonic):
        self._busy, self._own, self._clock = busy, own, clock
        self.max_threads = torch.get_num_threads()
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self._last = self._sample()

    def _sample(self):
        busy = self._busy()
        return None if busy is None else (busy, self._own(), self._clock())

    def others(self) -> float | None:
        """Cores the other processes kept busy since the previous call, or None if unknown."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[2] - last[2] <= 0:
            return None
        return max(0.0, ((now[0] - last[0]) - (now[1] - last[1])) / (now[2] - last[2]))

    def adjust(self) -> int:
        others = self.others()
        if others is not None:
            free = int(self.cores - others + 0.5)
            torch.set_num_threads(max(1, min(self.max_threads, free)))
        return torch.get_num_threads()

    def restore(self) -> None:
        torch.set_num_threads(self.max_threads)
