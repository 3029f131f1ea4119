"""Process and machine facts the benchmark reads: fd limits, /proc counters, free ports.

Everything here is Linux-only (``/proc``), like the benchmark itself.
"""

from __future__ import annotations

import os
import resource
import socket
from dataclasses import dataclass

__all__ = [
    "ProcSample",
    "cpu_seconds_of",
    "free_port",
    "pids_with_cmdline",
    "proc_sample",
    "raise_fd_limit",
    "tree_pids",
]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
WANTED_FDS = 200_000
"""Descriptors every benchmark process asks for: 50k relays on each side plus slack."""


def raise_fd_limit(wanted: int = WANTED_FDS) -> int:
    """Raise RLIMIT_NOFILE as far as allowed (above the hard limit when privileged); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(hard, wanted) if hard != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: resident memory and CPU time used so far."""

    rss_kib: int
    cpu_seconds: float


def proc_sample(pid: int) -> ProcSample:
    """RSS (from ``statm``) and user+system CPU (from ``stat``) of ``pid``."""
    with open(f"/proc/{pid}/statm") as f:
        rss_pages = int(f.read().split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" the fields start at number 3 (state); utime is field 14, stime 15
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return ProcSample(rss_kib=rss_pages * _PAGE // 1024, cpu_seconds=cpu)


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (for the embedded PostgreSQL's CPU, which is not ours)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 10_000:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pids_with_cmdline(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (finds the embedded postmaster by its folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def cpu_seconds_of(pids: list[int]) -> float:
    """Summed CPU of ``pids`` (processes that vanished count as 0)."""
    total = 0.0
    for pid in pids:
        try:
            total += proc_sample(pid).cpu_seconds
        except OSError:
            continue
    return total
