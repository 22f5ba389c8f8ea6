"""Account for CPU time during a run: the servers', the benchmark's, and everyone else's.

The machine may be shared (other test suites, a browser): a run during which other programs kept
the cores busy is flagged in the report, so a ratio is not trusted blindly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from memory import workers_of
from servers import Server

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    """Hold CPU seconds at one moment: the machine's, ours, and each server's process tree."""

    wall: float
    busy: float
    steal: float
    ours: float
    servers: dict[str, float]
    #: CPU seconds of each worker (each child of granian's main process that serves requests),
    #: by server and pid.
    workers: dict[str, dict[int, float]]


@dataclass(frozen=True)
class Usage:
    """Hold the CPU used between two snapshots."""

    #: CPU seconds of each server's process tree, and of its helpers (PostgreSQL's backends).
    servers: dict[str, float]
    #: Cores kept busy on average by processes that are not this benchmark's.
    other_cores: float
    #: Cores the hypervisor took away on average.
    steal_cores: float
    #: CPU seconds of each worker of each server, in the order of their pids.
    workers: dict[str, list[float]]


def _processes() -> dict[int, tuple[int, float]]:
    """Return every process's parent and CPU seconds (its own and its reaped children's)."""
    table: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # After the command's closing parenthesis: state ppid … utime(11) stime cutime cstime(14).
        fields = text[text.rindex(")") + 2 :].split()
        seconds = sum(int(value) for value in fields[11:15]) / TICKS
        table[int(stat.parent.name)] = (int(fields[1]), seconds)
    return table


def _children(table: dict[int, tuple[int, float]]) -> dict[int, list[int]]:
    """Return the pids of each process's children."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    return children


def _tree(table: dict[int, tuple[int, float]], root: int) -> float:
    """Return the CPU seconds of ``root`` and all its descendants."""
    children = _children(table)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo.extend(children.get(pid, []))
    return total


def snapshot(servers: Sequence[Server]) -> Snapshot:
    """Take a Snapshot; ours is this process, its reaped children (wrk, argon2) and the servers.

    A server's helpers count as its own, so PostgreSQL working for it is not other load.
    """
    with open("/proc/stat") as stat:
        user, nice, system, _, _, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    table = _processes()
    trees = {
        server.name: _tree(table, server.process.pid)
        + sum(table.get(pid, (0, 0.0))[1] for pid in server.helpers())
        for server in servers
    }
    workers = {
        server.name: {pid: _tree(table, pid) for pid in workers_of(server.process.pid)}
        for server in servers
    }
    own = os.times()
    return Snapshot(
        wall=time.monotonic(),
        busy=(user + nice + system + irq + softirq) / TICKS,
        steal=steal / TICKS,
        ours=own.user + own.system + own.children_user + own.children_system + sum(trees.values()),
        servers=trees,
        workers=workers,
    )


def between(before: Snapshot, after: Snapshot) -> Usage:
    """Return the CPU used from ``before`` to ``after``."""
    wall = after.wall - before.wall
    others = (after.busy - before.busy) - (after.ours - before.ours)
    return Usage(
        servers={name: after.servers[name] - before.servers[name] for name in after.servers},
        other_cores=max(0.0, others) / wall,
        steal_cores=(after.steal - before.steal) / wall,
        workers={
            name: [
                seconds - before.workers[name].get(pid, 0.0)
                for pid, seconds in sorted(pids.items())
            ]
            for name, pids in after.workers.items()
        },
    )
