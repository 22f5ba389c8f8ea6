"""Measure yupnope against its floor and ceiling, side by side, and write docs/benchmarks.md.

``make bench`` runs this. Each workload is a ratio of yupnope to a baseline measured in the same
run, the two interleaved (A B B A), so a machine that is slow or busy moves both alike. Load comes
from wrk against real ``yupnope serve`` processes on a fresh temporary instance, with OWASP's
argon2 parameters and the throttle limits raised out of the way, so every attempt is hashed.

- B1: successful ``POST /login`` per second, against raw argon2 verifies per second in one
  process per CPU (argon2-cffi directly, the same parameters).
- B2: logged-in ``GET /yup`` per second, against a bare Flask app that returns a constant, served
  by the very same gunicorn setup (``bench/bare.py``).
- B3: median latency of ``POST /login`` for an unknown name against a wrong password.

A missed target gets a py-spy profile of the server under that load, in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import report
import servers
from measurements import (
    MEMORY_KIB,
    PARALLELISM,
    TIME_COST,
    Load,
    Run,
    hasher,
    measure,
    raw_argon2,
)
from profiles import profile
from report import Result
from servers import Server

from yupnope import config

ROOT = Path(__file__).resolve().parent.parent
CPUS = os.cpu_count() or 1

#: Threads per worker as ``yupnope serve`` picks them when not told (cli.py: six per CPU).
THREADS = 6 * CPUS

#: Hashing slots per worker process (services.py: YUPNOPE_HASH_CONCURRENCY, 0 = one per CPU).
SLOTS = config.HASH_CONCURRENCY or CPUS

#: Concurrent logins: enough to keep every core hashing, and no more than one worker's gate
#: holds (its slots plus four waiting per slot, services.QUEUE_PER_SLOT), so even if every
#: connection lands on the same worker none is refused with 503.
LOGIN_CONNECTIONS = 4 * CPUS

#: Concurrent page views: past the point where either server's throughput stops rising.
PAGE_CONNECTIONS = 8 * CPUS

USER = "bench"
UNKNOWN_USER = "nobody-here"


def _rate(runs: Sequence[Run]) -> float:
    """Return the expected answers per second over all ``runs`` together."""
    return sum(one.expected for one in runs) / sum(one.seconds for one in runs)


def _median(runs: Sequence[Run]) -> float:
    """Return the mean of the runs' medians (the runs are equally long)."""
    return sum(one.p50_ms or 0.0 for one in runs) / len(runs)


def _cpu_ms(runs: Sequence[Run]) -> float:
    """Return the CPU milliseconds per expected answer over all ``runs`` together."""
    return 1000 * sum(one.cpu_seconds for one in runs) / sum(one.expected for one in runs)


def _refused(runs: Sequence[Run]) -> str:
    """Return a note of the non-2xx/3xx answers in ``runs``, or nothing when there were none."""
    count = sum(one.non_2xx_3xx for one in runs)
    return f"; {count} non-2xx/3xx" if count else ""


def _interleave(
    rounds: int, first: Callable[[], Run], second: Callable[[], Run]
) -> tuple[list[Run], list[Run], list[Run]]:
    """Run both sides ``rounds`` times as A B B A A B …; return each side's runs and all in order.

    Reversing every other pair cancels a drift that is linear in time (the machine getting
    busier, a database growing), which A B A B would hand to the side that always runs second.
    """
    firsts: list[Run] = []
    seconds: list[Run] = []
    ran: list[Run] = []
    for round_ in range(rounds):
        pair = [(first, firsts), (second, seconds)]
        for side, runs in pair if round_ % 2 == 0 else reversed(pair):
            runs.append(side())
            ran.append(runs[-1])
    return firsts, seconds, ran


def login(username: str, password: str, location: str, label: str) -> Load:
    """Return the load of logging in as ``username``, answered by a 303 to ``location``."""
    return Load(
        label,
        "yupnope",
        "/login",
        LOGIN_CONNECTIONS,
        method="POST",
        body=servers.login_form(username, password),
        status=303,
        location=location,
        keep_alive=False,
    )


def bench_b1(
    found: dict[str, Server], password: str, rounds: int, seconds: int, warmup: int
) -> Result:
    """Measure B1: successful logins per second against raw argon2 verifies per second."""
    print("B1: POST /login (right password) against raw argon2 verifies", flush=True)
    encoded = hasher().hash(password)
    load = login(USER, password, "/yup", "`POST /login`, right password")
    raw, web, ran = _interleave(
        rounds,
        lambda: raw_argon2(encoded, password, seconds, found, CPUS),
        lambda: measure(load, found, seconds, warmup),
    )
    # Not in the ratio, to tell where a shortfall comes from: argon2 with as many at once as the
    # server's hashing slots, and the same logins with argon2 at its cheapest (the stack alone).
    slots = raw_argon2(encoded, password, seconds, found, CPUS * SLOTS)
    alone = measure(
        replace(load, server="cheap", label=f"{load.label}, argon2 at m=8 KiB, t=1"),
        found,
        seconds,
        warmup,
    )
    ratio = _rate(web) / _rate(raw)
    return Result(
        id="B1",
        workload="successful `POST /login` per second vs raw argon2 verifies per second"
        f" ({CPUS} processes; m={MEMORY_KIB}, t={TIME_COST}, p={PARALLELISM})",
        measured=f"{_rate(web):,.1f} logins/s vs {_rate(raw):,.1f} verifies/s;"
        f" CPU {_cpu_ms(web):.1f} ms per login vs {_cpu_ms(raw):.1f} ms per verify"
        f" (ratio {_cpu_ms(raw) / _cpu_ms(web):.2f}); {alone.cpu_ms_each:.1f} ms per login with"
        f" the cheapest argon2{_refused(web)}",
        ratio=ratio,
        target="≥ 0.95",
        met=ratio >= 0.95,
        low=0.95,
        high=None,
        runs=[*ran, slots, alone],
        loads=[load],
    )


def bench_b2(
    found: dict[str, Server], cookie: str, rounds: int, seconds: int, warmup: int
) -> Result:
    """Measure B2: logged-in GET /yup per second against a bare Flask app on the same server."""
    print("B2: logged-in GET /yup against a bare Flask app", flush=True)
    bare = Load("bare Flask `GET /`", "bare", "/", PAGE_CONNECTIONS)
    yup = Load("logged-in `GET /yup`", "yupnope", "/yup", PAGE_CONNECTIONS, cookie=cookie)
    base, ours, ran = _interleave(
        rounds,
        lambda: measure(bare, found, seconds, warmup),
        lambda: measure(yup, found, seconds, warmup),
    )
    ratio = _rate(ours) / _rate(base)
    return Result(
        id="B2",
        workload="logged-in `GET /yup` per second vs a bare Flask app returning a constant"
        f" (both gunicorn gthread, {CPUS} workers × {THREADS} threads)",
        measured=f"{_rate(ours):,.0f} pages/s vs {_rate(base):,.0f} pages/s;"
        f" CPU {_cpu_ms(ours):.2f} ms vs {_cpu_ms(base):.2f} ms per page"
        f" (ratio {_cpu_ms(base) / _cpu_ms(ours):.2f}){_refused(ours)}",
        ratio=ratio,
        target="≥ 0.70",
        met=ratio >= 0.70,
        low=0.70,
        high=None,
        runs=ran,
        loads=[yup],
    )


def bench_b3(
    found: dict[str, Server], password: str, rounds: int, seconds: int, warmup: int
) -> Result:
    """Measure B3: median login latency for an unknown name against a wrong password."""
    print("B3: POST /login, unknown name against wrong password", flush=True)
    unknown = login(UNKNOWN_USER, password, "/nope", "`POST /login`, unknown name")
    wrong = login(USER, password + "-not", "/nope", "`POST /login`, wrong password")
    unknowns, wrongs, ran = _interleave(
        rounds,
        lambda: measure(unknown, found, seconds, warmup),
        lambda: measure(wrong, found, seconds, warmup),
    )
    a, b = _median(unknowns), _median(wrongs)
    difference = 100 * (a - b) / b
    return Result(
        id="B3",
        workload=f"median latency of `POST /login`, unknown name vs wrong password"
        f" ({LOGIN_CONNECTIONS} connections)",
        measured=f"{a:.1f} ms vs {b:.1f} ms ({difference:+.1f}%);"
        f" {_rate(unknowns):,.1f} vs {_rate(wrongs):,.1f} answers/s; CPU {_cpu_ms(unknowns):.1f}"
        f" vs {_cpu_ms(wrongs):.1f} ms per answer{_refused(unknowns + wrongs)}",
        ratio=a / b,
        target="within 5%",
        met=abs(difference) <= 5,
        low=0.95,
        high=1.05,
        runs=ran,
        loads=[unknown, wrong],
    )


def _method(options: argparse.Namespace, elapsed: float) -> list[str]:
    """Return the report's description of how the numbers were measured."""
    return [
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {options.rounds} rounds per workload,"
        f" each side {options.seconds} s after {options.warmup} s of warm-up; the whole"
        f" benchmark took {elapsed:.0f} s.",
        f"- Servers: `yupnope serve --workers {CPUS} --threads {THREADS}` (the defaults here) on"
        " a fresh temporary instance (SQLite) at OWASP's argon2id parameters, with"
        " `YUPNOPE_THROTTLE_FREE_FAILURES`, `_ACCOUNT_LIMIT`, `_ADDRESS_LIMIT` and `_GLOBAL_LIMIT`"
        " at 10⁹ so every attempt is hashed. `bench/bare.py` runs yupnope's own gunicorn"
        " `Server` class (worker class, workers, threads, access log) around a bare Flask app.",
        f"- One user, `{USER}`, made with `yupnope users add {USER} --password-stdin`.",
        f"- Load: wrk with one thread, {LOGIN_CONNECTIONS} connections for logins and"
        f" {PAGE_CONNECTIONS} for pages; `bench/request.lua` sends the form or the session"
        " cookie and checks every answer. Medians and p99 come from wrk's latency histogram.",
        f"- B1's baseline: argon2-cffi's `PasswordHasher.verify` of a real hash at"
        f" m={MEMORY_KIB} KiB, t={TIME_COST}, p={PARALLELISM} in {CPUS} processes started"
        f" together, each verifying for the same time; their rates summed. The extra run with"
        f" {CPUS * SLOTS} processes (not in the ratio) matches the server's hashing slots:"
        f" {CPUS} workers × {SLOTS} slots each. The run with argon2 at m=8 KiB, t=1 (a third"
        " server, its own instance, not in the ratio) shows what a login costs besides the hash.",
        "- B3: (unknown − wrong) / wrong of the mean of each side's run medians.",
        "- The CPU ratios under *measured* divide CPU time per answer (baseline ÷ yupnope)."
        " Other programs move them much less than the rates, which depend on the share of the"
        " cores each side gets: when the machine was busy, they are the better guide.",
    ]


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so the servers are stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workloads, profile any missed target, print the table and write the report."""
    parser = argparse.ArgumentParser(description="Measure yupnope; write docs/benchmarks.md.")
    parser.add_argument("--seconds", type=int, default=8, help="each measured run (8)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up before each run (2)")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs per workload (2)")
    parser.add_argument("--profile-seconds", type=int, default=6, help="py-spy per load (6)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy on a miss")
    parser.add_argument("--only", nargs="+", choices=["B1", "B2", "B3"], help="run only these")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    began = time.monotonic()
    for name in ["wrk", "yupnope"] + ([] if options.no_profile else ["py-spy"]):
        servers.program(name)
    described = report.machine(ROOT, CPUS)
    password = secrets.token_urlsafe(18)
    wanted = set(options.only or ["B1", "B2", "B3"])
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="yupnope-bench-")))
        env = servers.environment(folder / "instance")
        servers.add_user(env, USER, password)
        yupnope = [servers.program("yupnope"), "serve", "--host=127.0.0.1", "--port={port}"]
        bare = [sys.executable, str(ROOT / "bench" / "bare.py"), "--bind=127.0.0.1:{port}"]
        size = [f"--workers={CPUS}", f"--threads={THREADS}"]
        # The same server with argon2 at its cheapest: what a login costs besides the hash.
        cheap = servers.environment(folder / "cheap")
        cheap.update(YUPNOPE_ARGON2_MEMORY_KIB="8", YUPNOPE_ARGON2_TIME_COST="1")
        servers.add_user(cheap, USER, password)
        started: list[Server] = []
        stack.callback(servers.stop, started)
        found = {
            "yupnope": servers.start(started, "yupnope", yupnope + size, env, folder),
            "bare": servers.start(started, "bare", bare + size, env, folder),
            "cheap": servers.start(started, "cheap", yupnope + size, cheap, folder),
        }
        servers.wait_ready(found["yupnope"], "/healthz")
        servers.wait_ready(found["bare"], "/")
        servers.wait_ready(found["cheap"], "/healthz")
        cookie = servers.session_cookie(found["yupnope"], USER, password)
        timing = (options.rounds, options.seconds, options.warmup)
        if "B1" in wanted:
            results.append(bench_b1(found, password, *timing))
        if "B2" in wanted:
            results.append(bench_b2(found, cookie, *timing))
        if "B3" in wanted:
            results.append(bench_b3(found, password, *timing))
        for result in results:
            if result.met or options.no_profile:
                continue
            for load in result.loads:
                print(f"{result.id} missed its target: profiling {load.label}", flush=True)
                summary = profile(load, found[load.server], options.profile_seconds, folder)
                heading = f"**{load.label}**\n\n" if len(result.loads) > 1 else ""
                result.profile += f"{heading}{summary}\n\n"
    elapsed = time.monotonic() - began
    output: Path = options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    report.chart(results, output.with_suffix(".png"))
    output.write_text(report.markdown(results, described, _method(options, elapsed), output))
    print(f"\n{report.table(results)}\n", flush=True)
    if busy := report.warning(results):
        print(f"{busy}\n", flush=True)
    print(f"Wrote {output} and {output.with_suffix('.png').name} in {elapsed:.0f} s.", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # main's ExitStack has stopped every server by the time this runs.
        sys.exit("bench: interrupted; every server it started is stopped")
