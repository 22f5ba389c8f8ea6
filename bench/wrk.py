"""Measure one run of wrk against a server.

wrk counts every 2xx and 3xx as success and never follows a redirect, so ``request.lua`` checks
each answer itself (a 303 to /yup is a login, a 303 to /nope a refusal) and reports the counts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cpu
from measurements import Run
from servers import Server, login_form, program

BENCH = Path(__file__).resolve().parent

#: Seconds wrk waits for an answer before it gives the request up (and leaves it out of its
#: latency histogram, counting a timeout instead).
WRK_TIMEOUT_SECONDS = 5


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
    #: The Authorization header, "Bearer <token>" for the API, or nothing.
    authorization: str = ""
    #: The X-Original-URL nginx sends with a forward-auth check, or "" for none.
    original_url: str = ""
    #: The Host header, for a proxy that picks its server by name, or "" for wrk's own.
    host: str = ""
    status: int = 200
    location: str = ""
    #: False: a new connection per request, so no run depends on how its connections happened
    #: to fall on the workers (a connection stays with the worker whose listener accepted it).
    keep_alive: bool = True

    def environment(self) -> dict[str, str]:
        """Return this environment plus the settings ``request.lua`` reads."""
        env = dict(os.environ)
        env.update(
            BENCH_METHOD=self.method,
            BENCH_BODY=self.body,
            BENCH_COOKIE=self.cookie,
            BENCH_AUTHORIZATION=self.authorization,
            BENCH_ORIGINAL_URL=self.original_url,
            BENCH_HOST=self.host,
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
            f"--timeout={WRK_TIMEOUT_SECONDS}s",
            *extra,
            f"--script={BENCH / 'request.lua'}",
            server.url(self.path),
        ]


def login(
    label: str,
    server: str,
    credentials: tuple[str, str],
    location: str,
    connections: int,
) -> Load:
    """Return the load of posting the login form, answered by a 303 to ``location``."""
    return Load(
        label,
        server,
        "/login",
        connections,
        method="POST",
        body=login_form(*credentials),
        status=303,
        location=location,
        keep_alive=False,
    )


def start_wrk(load: Load, server: Server, seconds: int) -> subprocess.Popen[str]:
    """Start wrk sending ``load`` to ``server`` for ``seconds``."""
    return subprocess.Popen(  # noqa: S603 (wrk's absolute path, arguments of ours)
        load.wrk(server, seconds, "--latency"),
        env=load.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_wrk(process: subprocess.Popen[str], seconds: int) -> dict[str, int]:
    """Wait for wrk and return the numbers request.lua's done() printed."""
    out, err = process.communicate(timeout=seconds + 60)
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        sys.exit(f"bench: wrk failed ({process.returncode}): {err.strip() or out}")
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


#: Share of a core below which a server counts as idle: its queue of requests drained.
IDLE_CORES = 0.1


def settle(server: Server, limit: float = 30.0, interval: float = 0.25) -> None:
    """Wait until ``server`` is idle, at most ``limit`` s: it may still answer queued requests.

    wrk stops sending at its deadline, but the server has accepted requests that wait for a
    thread or a hashing slot; each is still answered (to a client that has gone). The next run
    must not start under that tail: its first logins would find the hashing queue full.
    """
    deadline = time.monotonic() + limit
    before = cpu.snapshot([server])
    while time.monotonic() < deadline:
        time.sleep(interval)
        after = cpu.snapshot([server])
        if after.servers[server.name] - before.servers[server.name] < IDLE_CORES * interval:
            return
        before = after


def measure(load: Load, servers: dict[str, Server], seconds: int, warmup: int) -> Run:
    """Warm up, then measure one workload and the CPU used meanwhile, each worker's apart.

    A run is kept however its connections fell on the workers: each keep-alive connection stays
    with the worker whose listener the kernel gave it to, and an uneven split is what the
    balance target judges, so putting such a run aside would hide it.
    """
    server = servers[load.server]
    everything = list(servers.values())
    if warmup:
        finish_wrk(start_wrk(load, server, warmup), warmup)
        settle(server)
    before = cpu.snapshot(everything)
    process = start_wrk(load, server, seconds)
    try:
        numbers = finish_wrk(process, seconds)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    used = cpu.between(before, cpu.snapshot(everything))
    result = wrk_run(
        load,
        server,
        numbers,
        used,
        cpu_seconds=used.servers[server.name],
        workers=tuple(used.workers[server.name]),
    )
    say(result)
    return result


def wrk_run(
    load: Load,
    server: Server,
    numbers: dict[str, int],
    used: cpu.Usage,
    cpu_seconds: float,
    workers: tuple[float, ...] = (),
    required: bool = True,
) -> Run:
    """Return the Run of what wrk counted, or exit with the server's log when none succeeded.

    Not ``required``, a run may have no answer at all (pages during a flood): its latencies
    are then None rather than wrk's zeros.
    """
    answered = numbers["expected"] + numbers["unexpected"] > 0
    if numbers["expected"] == 0 and required:
        sys.exit(
            f"bench: {load.label} got no expected answer; {server.name}'s log ends:\n"
            f"{server.log_tail()}"
        )
    elapsed = numbers["duration_us"] / 1e6
    return Run(
        label=load.label,
        seconds=elapsed,
        expected=numbers["expected"],
        rate=numbers["expected"] / elapsed,
        unexpected=numbers["unexpected"],
        unavailable=numbers["unavailable"],
        non_2xx_3xx=numbers["non_2xx_3xx"],
        socket_errors=sum(numbers[key] for key in ("connect", "read", "write", "timeout")),
        p50_ms=numbers["p50_us"] / 1000 if answered else None,
        p99_ms=numbers["p99_us"] / 1000 if answered else None,
        cpu_seconds=cpu_seconds,
        other_cores=used.other_cores,
        steal_cores=used.steal_cores,
        workers=workers,
    )


def say(result: Run) -> None:
    """Print one line about a measured wrk run, as it ends."""
    if result.p50_ms is None or result.p99_ms is None:
        latency = "no answer"
    else:
        latency = f"median {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
    print(
        f"  {result.label}: {result.rate:,.1f}/s, {latency}, {result.unexpected} unexpected"
        f" ({result.non_2xx_3xx} non-2xx/3xx, {result.unavailable} of them 503,"
        f" {result.socket_errors} socket errors),"
        f" workers {result.split}{result.balance_note}, other load {result.other_cores:.2f} cores",
        flush=True,
    )
