"""What the machine was doing during a measurement: CPU time of our processes, and whether anything
else (another build, a fuzzer) or the hypervisor took CPU meanwhile. Used by bench/run.py and
tests/soak.py so that a disturbed figure says so."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) and its live children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(c)) for c in children)


class Witness:
    """CPU used on the machine during a measurement by anything but the processes named (and this
    one's reaped children, i.e. wrk), and CPU time the hypervisor stole: a disturbed case shows."""

    def __init__(self, *pids: int):
        self.pids = pids
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        busy = (values[0] + values[1] + values[2] + values[5] + values[6]) / tick
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = sum(cpu_seconds(pid) for pid in self.pids) + children.ru_utime + children.ru_stime
        self_usage = resource.getrusage(resource.RUSAGE_SELF)
        return busy, ours + self_usage.ru_utime + self_usage.ru_stime, values[7] / tick, time.monotonic()

    def read(self) -> dict[str, float]:
        """CPUs' worth (0–N) of others' use and of steal since the start."""
        end = self._sample()
        seconds = max(end[3] - self.start[3], 1e-6)
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return {"other_cpus": round(max(others, 0.0) / seconds, 3),
                "steal_cpus": round((end[2] - self.start[2]) / seconds, 3)}
