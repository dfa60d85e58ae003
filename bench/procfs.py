"""Everything the bench reads from /proc: process trees, RSS, threads, CPU time, the machine's CPU.

Linux only, as the bench is. A process or thread may end between listing and reading it, so the
readers of several processes skip what vanished.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def parent(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent(int(entry.name)) == pid:
                out.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return sorted(out)


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/*/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def cmdline(pid: int) -> str:
    """The command line, arguments separated by spaces ('' once the process is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def status(pid: int) -> tuple[int, int]:
    """(VmRSS in KiB, Threads) of a process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants, in KiB."""
    total = 0
    for p in tree(pid):
        try:
            total += status(p)[0]
        except OSError:
            continue
    return total


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds, at clock-tick resolution."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of `pid` (schedstat: finer than cpu_s's ticks)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return int(cpu_s(pid) * 1e9)
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))
