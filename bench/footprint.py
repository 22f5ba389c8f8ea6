"""Measure the memory a server holds while it serves logins (B4), against the issue's budget.

The peak PSS of the whole process tree (granian's main process and its workers) while
``LOGIN_CONNECTIONS`` connections log in with the right password, every one hashed at OWASP's
parameters. Unlike the other targets this one is a fixed budget, not a baseline of the same
run: memory is what a small host has to spare, and it does not slow down with a busy machine.
"""

from __future__ import annotations

from dataclasses import replace

import memory
from measurements import Run, Timing, rate, refused
from memory import MIB, Peak
from report import Result, at_most
from rig import LOGIN_CONNECTIONS, USER, login
from servers import Server
from wrk import measure

#: The issue's budget for the whole tree's PSS under logins.
BUDGET_MIB = 160


def bench_b4(found: dict[str, Server], server: Server, password: str, timing: Timing) -> Result:
    """Measure B4: the peak PSS of ``server``'s tree under logins, against BUDGET_MIB.

    ``server`` is B4's own, fresh: the peak is that of a server doing its daily work, not what
    a flood or another workload left behind.
    """
    rounds, seconds, warmup = timing
    print(f"B4: {LOGIN_CONNECTIONS} connections logging in, against {BUDGET_MIB} MiB", flush=True)
    idle = memory.idle(server.process.pid)
    load = login(USER, password, "/yup", "`POST /login`, right password", server.name)
    runs: list[Run] = []
    peaks: list[Peak] = []
    for _ in range(rounds):
        # The warm-up is inside: its peak counts as much as the measured run's.
        with memory.Sampler(server.process.pid) as sampler:
            ran = measure(load, found, seconds, warmup)
        peaks.append(sampler.peak)
        runs.append(replace(ran, label=f"{ran.label} ({sampler.peak.said()})"))
    worst = max(peaks, key=lambda peak: peak.pss)
    root = server.process.pid
    verdict = at_most(worst.pss / (BUDGET_MIB * MIB), 1.0)
    verdict["target"] = f"≤ {BUDGET_MIB} MiB"
    return Result(
        id="B4",
        workload=f"peak memory (PSS) of all server processes while {LOGIN_CONNECTIONS}"
        f" connections log in vs {BUDGET_MIB} MiB",
        measured=f"{worst.said()}; at the peak: {memory.shares(root, worst.at_peak)};"
        " idle before:"
        f" {memory.shares(root, idle)}; {rate(runs):,.1f} logins/s{refused(runs)}",
        **verdict,
        runs=runs,
        profile="Not profiled: py-spy samples where the CPU goes, not what holds memory.",
    )
