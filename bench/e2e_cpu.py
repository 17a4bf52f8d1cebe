"""CPU time per request, by process: where a throughput run's time goes (Linux, from /proc).

On a machine the load generator, the servers and the database share, requests per second move
with whatever else runs; the CPU each request costs each process moves much less, and says which
part of the gateway a difference comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks used: user + system) for every process readable now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name is in parentheses and may hold spaces: the fields start after the last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def postmaster_pid(data_directory: str) -> int | None:
    """The PostgreSQL server's pid, from the first line of ``postmaster.pid`` in its data directory."""
    try:
        return int((Path(data_directory) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """CPU seconds used by each role's process and its descendants (workers, backends), but for those
    that are roles of their own (the load generator started the servers: they are not its part)."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles

    def read(self) -> dict[str, float]:
        stats = _stats()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in stats.items():
            children.setdefault(parent, []).append(pid)
        roots = set(self.roles.values())
        used = {}
        for role, root in self.roles.items():
            ticks, todo = 0, [root]
            while todo:
                pid = todo.pop()
                ticks += stats.get(pid, (0, 0))[1]
                todo += [child for child in children.get(pid, []) if child not in roots]
            used[role] = ticks / CLOCK_TICKS
        return used

    @staticmethod
    def per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        """Milliseconds of CPU per request, by role."""
        return {role: (after[role] - before[role]) * 1000 / max(requests, 1) for role in after}


def cpu_mean(runs: list[dict[str, float] | None]) -> dict[str, float] | None:
    """Each role's CPU per request averaged over runs (of about equal length); None without a meter."""
    if not runs or any(run is None for run in runs):
        return None
    return {role: sum(run[role] for run in runs) / len(runs) for role in runs[0]}


def cpu_summary(per_request: dict[str, float]) -> str:
    parts = ", ".join(f"{role} {ms:.2f}" for role, ms in per_request.items())
    return f"{parts}; total {sum(per_request.values()):.2f} ms"
