"""How much of the machine a stretch of work had: a clock that says when it shared its cores.

A time per epoch is a cost only when nothing else ran beside it: on a 2-core machine a test suite
running alongside made one committed epoch 4.5x slower than every other build of it. Each epoch
records its wall-clock time, the CPU time of this process, and the CPU time every *other* process
on the machine used meanwhile (Linux: /proc/stat, all processes' busy time minus ours; elsewhere
the 1-minute load average less our own use). An epoch during which other processes kept more
than `CONTENDED_CORES` cores busy on average is flagged `contended`, and the report never states
a flagged epoch's time as a cost.
"""
from __future__ import annotations

import os
import time

CONTENDED_CORES = 0.5  # others' average busy cores beyond which a clock is not a cost


def _machine_busy_seconds() -> float | None:
    """CPU-seconds every process on the machine has been busy since boot (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class ShareClock:
    """start() ... read(): wall time, our CPU time, and what the rest of the machine used."""

    def __init__(self, processes: int = 1):
        self.processes = processes  # other ranks of this run on the same machine are not others
        self.start()

    def start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.busy0 = _machine_busy_seconds()

    def read(self) -> dict:
        wall = max(time.perf_counter() - self.wall0, 1e-9)
        cpu = time.process_time() - self.cpu0
        busy = _machine_busy_seconds()
        if busy is not None and self.busy0 is not None:
            # our other ranks are as busy as we are, roughly
            others = max(0.0, (busy - self.busy0) - cpu * self.processes) / wall
            how = "proc_stat"
        else:
            others = max(0.0, os.getloadavg()[0] - cpu / wall * self.processes) \
                if hasattr(os, "getloadavg") else None
            how = "load_average"
        return {"wall_s": wall, "process_cpu_s": cpu, "process_cores": cpu / wall,
                "others_cores": others, "machine_cores": os.cpu_count(), "measured_by": how,
                "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                "contended": None if others is None else others > CONTENDED_CORES}


def isolated_epoch_time(epochs: list[dict]) -> tuple[float | None, int, int]:
    """(median time of the epochs that ran alone, how many did, how many were flagged). Epochs
    logged before clocks were checked count as neither: their time is not stated as a cost."""
    alone = sorted(e["epoch_time_s"] for e in epochs if e.get("contended") is False)
    flagged = sum(1 for e in epochs if e.get("contended") is True)
    if not alone:
        return None, 0, flagged
    mid = len(alone) // 2
    median = alone[mid] if len(alone) % 2 else (alone[mid - 1] + alone[mid]) / 2
    return median, len(alone), flagged
