"""Measure one run: wrk against a server, or raw argon2 verifies in parallel processes.

wrk counts every 2xx and 3xx as success and never follows a redirect, so ``request.lua`` checks
each answer itself (a 303 to /yup is a login, a 303 to /nope a refusal) and reports the counts.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import cpu
from servers import Server, program

from yupnope import config

BENCH = Path(__file__).resolve().parent

#: The argon2id parameters the server hashes with by default (README "Settings": OWASP's).
MEMORY_KIB = config.ARGON2_MEMORY_KIB
TIME_COST = config.ARGON2_TIME_COST
PARALLELISM = config.ARGON2_PARALLELISM


@dataclass(frozen=True)
class Load:
    """Describe one wrk workload: what to send, to which server, and which answer is success."""

    label: str
    server: str
    path: str
    connections: int
    method: str = "GET"
    body: str = ""
    cookie: str = ""
    status: int = 200
    location: str = ""
    #: False: a new connection per request, so no run depends on how its connections happened
    #: to fall on the workers (gunicorn keeps a connection with the worker that accepted it).
    keep_alive: bool = True

    def environment(self) -> dict[str, str]:
        """Return this environment plus the settings ``request.lua`` reads."""
        env = dict(os.environ)
        env.update(
            BENCH_METHOD=self.method,
            BENCH_BODY=self.body,
            BENCH_COOKIE=self.cookie,
            BENCH_STATUS=str(self.status),
            BENCH_LOCATION=self.location,
            BENCH_CLOSE="" if self.keep_alive else "1",
        )
        return env

    def wrk(self, server: Server, seconds: int, *extra: str) -> list[str]:
        """Return the wrk command line that sends this load to ``server`` for ``seconds``."""
        return [
            program("wrk"),
            # One thread sends thousands of requests a second and leaves the cores to the server.
            "--threads=1",
            f"--connections={self.connections}",
            f"--duration={seconds}s",
            "--timeout=5s",
            *extra,
            f"--script={BENCH / 'request.lua'}",
            server.url(self.path),
        ]


@dataclass(frozen=True)
class Run:
    """Hold one measured run of a workload or of the raw argon2 baseline."""

    label: str
    seconds: float
    expected: int
    rate: float
    unexpected: int = 0
    non_2xx_3xx: int = 0
    socket_errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    #: CPU seconds of the processes doing the work: the server's tree, or the argon2 processes.
    cpu_seconds: float = 0.0
    other_cores: float = 0.0
    steal_cores: float = 0.0
    #: CPU seconds of each of the server's workers: one far above the other means the run's
    #: connections fell mostly on one worker.
    workers: tuple[float, ...] = ()
    #: Starts of this run put aside because one worker had taken every connection.
    set_aside: int = 0

    @property
    def split(self) -> str:
        """Return each worker's share of the server's CPU, as "48 / 52 %", or "–"."""
        total = sum(self.workers)
        if total <= 0:
            return "–"
        return " / ".join(f"{100 * seconds / total:.0f}" for seconds in self.workers) + " %"

    @property
    def cpu_ms_each(self) -> float:
        """Return the CPU milliseconds spent per expected answer."""
        return 1000 * self.cpu_seconds / self.expected if self.expected else math.nan


def _start_wrk(load: Load, server: Server, seconds: int) -> subprocess.Popen[str]:
    """Start wrk sending ``load`` to ``server`` for ``seconds``."""
    return subprocess.Popen(  # noqa: S603 (wrk's absolute path, arguments of ours)
        load.wrk(server, seconds, "--latency"),
        env=load.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_wrk(process: subprocess.Popen[str], seconds: int) -> dict[str, int]:
    """Wait for wrk and return the numbers request.lua's done() printed."""
    out, err = process.communicate(timeout=seconds + 60)
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        sys.exit(f"bench: wrk failed ({process.returncode}): {err.strip() or out}")
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


#: Share of a server's CPU past which one worker is taken to hold all of a run's connections.
UNBALANCED = 0.75

#: Starts a keep-alive run gets for its connections to fall on more than one worker.
TRIES = 5


def _balanced(workers: Sequence[float]) -> bool:
    """Return whether no worker of a multi-worker server did nearly all the work."""
    total = sum(workers)
    return len(workers) < 2 or total <= 0 or max(workers) / total <= UNBALANCED


def measure(load: Load, servers: dict[str, Server], seconds: int, warmup: int) -> Run:
    """Warm up, then measure one workload and the CPU used meanwhile.

    wrk opens all its connections at once, and one gunicorn worker often accepts every one of
    them and keeps them to the end, leaving the other cores idle. A keep-alive run that starts
    so measures that accident rather than the stack: after two seconds it is stopped and
    started again, up to TRIES times, and the result counts the starts put aside.
    """
    server = servers[load.server]
    everything = list(servers.values())
    if warmup:
        _finish_wrk(_start_wrk(load, server, warmup), warmup)
    for attempt in range(TRIES):
        before = cpu.snapshot(everything)
        process = _start_wrk(load, server, seconds)
        try:
            if load.keep_alive and attempt < TRIES - 1:
                time.sleep(1.0)
                settled = cpu.snapshot(everything)
                time.sleep(1.0)
                split = cpu.between(settled, cpu.snapshot(everything)).workers[server.name]
                if not _balanced(split):
                    print(
                        f"  (connections fell on one worker: starting {load.label} again)",
                        flush=True,
                    )
                    continue
            numbers = _finish_wrk(process, seconds)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        break
    used = cpu.between(before, cpu.snapshot(everything))
    if numbers["expected"] == 0:
        sys.exit(
            f"bench: {load.label} got no expected answer; {server.name}'s log ends:\n"
            f"{server.log_tail()}"
        )
    elapsed = numbers["duration_us"] / 1e6
    result = Run(
        label=load.label,
        seconds=elapsed,
        expected=numbers["expected"],
        rate=numbers["expected"] / elapsed,
        unexpected=numbers["unexpected"],
        non_2xx_3xx=numbers["non_2xx_3xx"],
        socket_errors=sum(numbers[key] for key in ("connect", "read", "write", "timeout")),
        p50_ms=numbers["p50_us"] / 1000,
        p99_ms=numbers["p99_us"] / 1000,
        cpu_seconds=used.servers[load.server],
        other_cores=used.other_cores,
        steal_cores=used.steal_cores,
        workers=tuple(used.workers[load.server]),
        set_aside=attempt,
    )
    print(
        f"  {load.label}: {result.rate:,.1f}/s, median {result.p50_ms:.2f} ms,"
        f" {result.unexpected} unexpected ({result.non_2xx_3xx} non-2xx/3xx),"
        f" workers {result.split}, other load {result.other_cores:.2f} cores",
        flush=True,
    )
    return result


def hasher() -> argon2.PasswordHasher:
    """Return argon2-cffi's hasher with the server's parameters and lengths."""
    return argon2.PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


def _verify_for(encoded: str, password: str, seconds: float, start: Any, results: Any) -> None:
    """Verify ``password`` against ``encoded`` for ``seconds``; put (count, elapsed, CPU)."""
    # The parent handles Ctrl-C and ends this process; a traceback from each would be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    checker = hasher()
    checker.verify(encoded, password)
    start.wait()
    count, began, cpu_began = 0, time.perf_counter(), time.process_time()
    deadline = began + seconds
    while (now := time.perf_counter()) < deadline:
        checker.verify(encoded, password)
        count += 1
    results.put((count, now - began, time.process_time() - cpu_began))


def raw_argon2(
    encoded: str, password: str, seconds: int, servers: dict[str, Server], processes: int
) -> Run:
    """Measure argon2 verifies per second in ``processes`` processes started together, summed."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_verify_for, args=(encoded, password, seconds, start, results))
        for _ in range(processes)
    ]
    before = cpu.snapshot(list(servers.values()))
    try:
        for worker in workers:
            worker.start()
        counts = [results.get(timeout=seconds + 60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
    used = cpu.between(before, cpu.snapshot(list(servers.values())))
    result = Run(
        label=f"argon2-cffi verify × {processes} processes",
        seconds=sum(elapsed for _, elapsed, _ in counts) / processes,
        expected=sum(count for count, _, _ in counts),
        rate=sum(count / elapsed for count, elapsed, _ in counts),
        cpu_seconds=sum(seconds for _, _, seconds in counts),
        other_cores=used.other_cores,
        steal_cores=used.steal_cores,
    )
    print(
        f"  {result.label}: {result.rate:,.1f}/s, other load {result.other_cores:.2f} cores",
        flush=True,
    )
    return result
