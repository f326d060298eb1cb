"""CPU time per request during a wrk run, from /proc: what a row's ratio is made of.

For each run: the whole machine's busy time (every core, every process, the kernel), the
server's own (its gunicorn processes, user and system apart) and PostgreSQL's (every process
named postgres), each divided by the requests answered. When a run keeps every core busy, its
requests/s is the cores' time over the machine's CPU per request, so a function's ratio to the
floor is the floor's CPU per request over the function's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def _machine() -> tuple[int, int]:
    """Ticks every core spent busy (neither idle nor waiting for I/O), and in all."""
    cpu_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    ticks = [int(x) for x in cpu_line.split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def _processes() -> dict[int, tuple[str, int, int, int]]:
    """Every process's name, user and system ticks of all its threads, and parent."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        fields = rest.split()
        found[int(entry.name)] = (name, int(fields[11]), int(fields[12]), int(fields[1]))
    return found


def measure(run: Callable[[], dict], server_pids: Iterable[int],
            database_pid: int | None = None) -> dict[str, Any]:
    """`run()` (a wrk run answering "ok" and "failed" counts), with its CPU per request in µs:
    machine, server_user, server_system, database; and how busy the machine was (0 to 1).
    The database is every process named postgres, or with `database_pid` (a postmaster) that
    server's processes only (other PostgreSQL servers may share the machine)."""
    server = set(server_pids)
    machine_before, before = _machine(), _processes()
    result = run()
    machine_after, after = _machine(), _processes()
    requests = max(1, result["ok"] + result["failed"])
    ticks = {"server_user": 0, "server_system": 0, "database": 0}
    for pid, (name, user, system, parent) in after.items():
        _, user_before, system_before, _ = before.get(pid, (name, 0, 0, 0))
        if pid in server:
            ticks["server_user"] += user - user_before
            ticks["server_system"] += system - system_before
        elif name == "postgres" and (database_pid is None or database_pid in (pid, parent)):
            ticks["database"] += user - user_before + system - system_before
    busy, total = (a - b for a, b in zip(machine_after, machine_before, strict=True))
    cpu = {part: n * TICK_US / requests for part, n in ticks.items()}
    cpu["machine"] = busy * TICK_US / requests
    cpu["busy"] = busy / max(1, total)
    return {**result, "cpu": cpu}
