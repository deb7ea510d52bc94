"""Where a benchmark's CPU goes: CPU seconds per process between two snapshots of /proc (Linux only).

A rate next to a ceiling says how far off a target is; the CPU behind it says whether any scheduling could reach it.
Work that needs T CPU seconds cannot finish in less than T / cores seconds of wall time, however well it overlaps.
Processes that end between the two snapshots are not counted (the benchmarks here keep theirs alive). The kernel
counts in clock ticks (10 ms), and on a shared VM a busy second core may be a hyperthread of the first: a split of a
few seconds can read a few percent above 100% of the cores, and CPU seconds spent side by side weigh more than alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CORES = os.cpu_count() or 1
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Snapshot = dict[int, tuple[int, float]]  # pid → (parent pid, CPU seconds so far, user + system)


def snapshot() -> Snapshot:
    """Every visible process's parent and CPU seconds; empty where there is no /proc."""
    found: Snapshot = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def descendants(root: int, processes: Snapshot) -> set[int]:
    """The pids of `root`'s children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds per named group of processes over `wall` seconds."""

    seconds: dict[str, float]
    wall: float

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def describe(self) -> str:
        """e.g. "follower 7.3 s, parsing workers 7.4 s: 14.7 s of CPU in 10.8 s = 68% of 2 cores"."""
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
        return (f"{parts}: {self.total:.1f} s of CPU in {self.wall:.1f} s = "
                f"{self.total / (self.wall * CORES):.0%} of {CORES} cores")


def split(before: Snapshot, after: Snapshot, wall: float, groups: dict[str, set[int]]) -> CpuSplit:
    """CPU seconds between the snapshots of each named group of pids."""
    return CpuSplit({name: sum(after[pid][1] - before.get(pid, (0, 0.0))[1] for pid in pids if pid in after)
                     for name, pids in groups.items()}, wall)
