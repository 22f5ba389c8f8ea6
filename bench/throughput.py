"""Measure throughput against a baseline: logins (B1), pages (B2), and both on PostgreSQL (B8).

B8 runs the same two workloads on another database, so each takes the ``Database`` it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hashing import MEMORY_KIB, PARALLELISM, TIME_COST, hasher, raw_argon2
from measurements import Timing, cpu_ms, interleave, rate, refused, unavailable
from report import Result, at_least
from rig import CPUS, PAGE_CONNECTIONS, SLOTS, THREADS, USER, WORKERS, login
from servers import Server
from wrk import Load, measure


@dataclass(frozen=True)
class Database:
    """Name the servers B1 and B2 run against, and how their results are labelled.

    B8 runs the same two workloads with PostgreSQL behind the servers instead of SQLite.
    """

    #: Where the results go in the table: "" for B1 and B2 themselves, "B8/" for B8's.
    prefix: str
    #: The yupnope server with OWASP's argon2 parameters.
    server: str
    #: The same with argon2 at its cheapest, or None to leave out B1's extra runs.
    cheap: str | None
    #: Said in the workload when not SQLite.
    name: str = ""


SQLITE = Database("", "yupnope", "cheap")
POSTGRES = Database("B8/", "pg", None, " on PostgreSQL")


def bench_b1(
    found: dict[str, Server], password: str, timing: Timing, on: Database = SQLITE
) -> Result:
    """Measure B1: successful logins per second against raw argon2 verifies per second."""
    rounds, seconds, warmup = timing
    print(f"{on.prefix}B1: POST /login (right password) against raw argon2 verifies", flush=True)
    encoded = hasher().hash(password)
    load = login(USER, password, "/yup", f"`POST /login`, right password{on.name}", on.server)
    raw, web, ran = interleave(
        rounds,
        lambda: raw_argon2(encoded, password, seconds, found, CPUS),
        lambda: measure(load, found, seconds, warmup),
    )
    extra = ""
    if on.cheap is not None:
        # Not in the ratio, to tell where a shortfall comes from: argon2 with as many at once as
        # the server's hashing slots (when they outnumber the cores), and the same logins with
        # argon2 at its cheapest (the stack alone). Neither depends on the database, so B8
        # leaves them out.
        if WORKERS * SLOTS > CPUS:
            ran.append(raw_argon2(encoded, password, seconds, found, WORKERS * SLOTS))
        cheap = replace(load, server=on.cheap, label=f"{load.label}, argon2 at m=8 KiB, t=1")
        ran.append(measure(cheap, found, seconds, warmup))
        extra = f"; {ran[-1].cpu_ms_each:.1f} ms per login with the cheapest argon2"
    return Result(
        id=f"{on.prefix}B1",
        workload=f"successful `POST /login`{on.name} per second vs raw argon2 verifies per"
        f" second ({CPUS} processes; m={MEMORY_KIB}, t={TIME_COST}, p={PARALLELISM})",
        measured=f"{rate(web):,.1f} logins/s vs {rate(raw):,.1f} verifies/s;"
        f" CPU {cpu_ms(web):.1f} ms per login vs {cpu_ms(raw):.1f} ms per verify"
        f" (ratio {cpu_ms(raw) / cpu_ms(web):.2f}){extra}{refused(web)}",
        **at_least(rate(web) / rate(raw), 0.95, unavailable=unavailable(web)),
        runs=ran,
        loads=[load],
    )


def bench_b2(
    found: dict[str, Server], cookie: str, timing: Timing, on: Database = SQLITE
) -> Result:
    """Measure B2: logged-in GET /yup per second against a bare Flask app on the same server."""
    rounds, seconds, warmup = timing
    print(f"{on.prefix}B2: logged-in GET /yup against a bare Flask app", flush=True)
    bare = Load("bare Flask `GET /`", "bare", "/", PAGE_CONNECTIONS)
    yup = Load(f"logged-in `GET /yup`{on.name}", on.server, "/yup", PAGE_CONNECTIONS, cookie=cookie)
    base, ours, ran = interleave(
        rounds,
        lambda: measure(bare, found, seconds, warmup),
        lambda: measure(yup, found, seconds, warmup),
    )
    return Result(
        id=f"{on.prefix}B2",
        workload=f"logged-in `GET /yup`{on.name} per second vs a bare Flask app returning a"
        f" constant (both gunicorn gthread, {CPUS} workers × {THREADS} threads)",
        measured=f"{rate(ours):,.0f} pages/s vs {rate(base):,.0f} pages/s;"
        f" CPU {cpu_ms(ours):.2f} ms vs {cpu_ms(base):.2f} ms per page"
        f" (ratio {cpu_ms(base) / cpu_ms(ours):.2f}){refused(ours)}",
        **at_least(rate(ours) / rate(base), 0.70, unavailable=unavailable(ours)),
        runs=ran,
        loads=[yup],
    )


def not_run(reason: str) -> Result:
    """Return B8's row when PostgreSQL could not be used."""
    return Result(
        id="B8",
        workload="B1 and B2 with PostgreSQL instead of SQLite",
        measured="",
        ratio=float("nan"),
        target="B1's ≥ 0.95, B2's ≥ 0.70",
        met=False,
        low=0.95,
        high=None,
        skipped=reason,
    )
