"""Measure throughput against a baseline: logins (B1), pages (B2), the API (B2-api), B8, B9.

B8 runs B1 and B2 on another database, so each takes the ``Database`` it runs on. Every workload
here misses its target on any 503, and B1, B2 and B2-api add a row judging how evenly the
server's workers shared the load (``balance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from balance import bench_balance
from hashing import MEMORY_KIB, PARALLELISM, TIME_COST, hasher, raw_argon2
from measurements import Timing, cpu_ms, interleave, rate, refused, unavailable
from report import Result, at_least
from rig import CPUS, LOGIN_CONNECTIONS, PAGE_CONNECTIONS, SLOTS, THREADS, USER, WORKERS, login
from servers import Server
from wrk import Load, measure

#: B1's target: logins per second over raw argon2 verifies per second.
LOGINS = 0.85

#: B2's and B2-api's target, and the goal beyond it: pages per second over the bare app's.
PAGES, PAGES_GOAL = 0.50, 0.70


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
    #: Whether the workers' balance gets a judged row: B8 shows it under Every run alone.
    balance: bool = True


SQLITE = Database("", "yupnope", "cheap")
POSTGRES = Database("B8/", "pg", None, " on PostgreSQL", balance=False)


def bench_b1(
    found: dict[str, Server], password: str, timing: Timing, on: Database = SQLITE
) -> list[Result]:
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
    result = Result(
        id=f"{on.prefix}B1",
        workload=f"successful `POST /login`{on.name} per second ({LOGIN_CONNECTIONS} connections)"
        f" vs raw argon2 verifies per second ({CPUS} processes; m={MEMORY_KIB}, t={TIME_COST},"
        f" p={PARALLELISM})",
        measured=f"{rate(web):,.1f} logins/s vs {rate(raw):,.1f} verifies/s;"
        f" CPU {cpu_ms(web):.1f} ms per login vs {cpu_ms(raw):.1f} ms per verify"
        f" (ratio {cpu_ms(raw) / cpu_ms(web):.2f}){extra}{refused(web) or '; no 503'}",
        **at_least(rate(web) / rate(raw), LOGINS, unavailable=unavailable(web)),
        runs=ran,
        loads=[load],
    )
    if not on.balance:
        return [result]
    return [result, bench_balance(result.id, "logins", web)]


def bench_b2(
    found: dict[str, Server], cookie: str, timing: Timing, on: Database = SQLITE
) -> list[Result]:
    """Measure B2: logged-in GET /yup per second against a bare Flask app on the same server."""
    print(f"{on.prefix}B2: logged-in GET /yup against a bare Flask app", flush=True)
    yup = Load(f"logged-in `GET /yup`{on.name}", on.server, "/yup", PAGE_CONNECTIONS, cookie=cookie)
    return _against_bare(found, yup, f"{on.prefix}B2", timing, on.balance)


def bench_b2_api(found: dict[str, Server], token: str, timing: Timing) -> list[Result]:
    """Measure B2-api: GET /api/v1/me with a bearer token against the same bare Flask app."""
    print("B2-api: GET /api/v1/me with a bearer token against a bare Flask app", flush=True)
    me = Load(
        "`GET /api/v1/me` with a bearer token",
        SQLITE.server,
        "/api/v1/me",
        PAGE_CONNECTIONS,
        authorization=f"Bearer {token}",
    )
    return _against_bare(found, me, "B2-api", timing, SQLITE.balance)


def bench_b9(found: dict[str, Server], cookie: str, timing: Timing) -> list[Result]:
    """Measure B9: signed-in forward-auth checks (nginx's /auth/request) against the bare app.

    The check a proxy makes before every request to every app it protects: the session cookie
    read from the database, the access rules decided (the bench's instance lets every signed-in
    user in, servers.ACCESS), the identity answered.
    """
    print("B9: signed-in forward-auth checks against a bare Flask app", flush=True)
    check = Load(
        "signed-in forward-auth check `GET /auth/request`",
        SQLITE.server,
        "/auth/request",
        PAGE_CONNECTIONS,
        cookie=cookie,
        original_url="https://app.example.com/notes",
    )
    return _against_bare(found, check, "B9", timing, SQLITE.balance)


def _against_bare(
    found: dict[str, Server], load: Load, id_: str, timing: Timing, balance: bool
) -> list[Result]:
    """Measure ``load`` against the bare app's constant, interleaved; add its balance row."""
    rounds, seconds, warmup = timing
    bare = Load("bare Flask `GET /`", "bare", "/", PAGE_CONNECTIONS)
    base, ours, ran = interleave(
        rounds,
        lambda: measure(bare, found, seconds, warmup),
        lambda: measure(load, found, seconds, warmup),
    )
    result = Result(
        id=id_,
        workload=f"{load.label} per second vs a bare Flask app returning a constant (both"
        f" granian's WSGI mode, {WORKERS} workers × {THREADS} threads, {PAGE_CONNECTIONS}"
        " keep-alive connections)",
        measured=f"{rate(ours):,.0f} answers/s vs {rate(base):,.0f} answers/s;"
        f" CPU {cpu_ms(ours):.2f} ms vs {cpu_ms(base):.2f} ms per answer"
        f" (ratio {cpu_ms(base) / cpu_ms(ours):.2f}){refused(ours) or '; no 503'}",
        **at_least(rate(ours) / rate(base), PAGES, PAGES_GOAL, unavailable(ours)),
        runs=ran,
        loads=[load],
    )
    if not balance:
        return [result]
    return [result, bench_balance(id_, "keep-alive requests", ours, base)]


def not_run(reason: str) -> Result:
    """Return B8's row when PostgreSQL could not be used."""
    return Result(
        id="B8",
        workload="B1 and B2 with PostgreSQL instead of SQLite",
        measured="",
        ratio=float("nan"),
        target=f"B1's ≥ {LOGINS:.2f}, B2's ≥ {PAGES:.2f}, no 503",
        met=False,
        low=LOGINS,
        high=None,
        skipped=reason,
    )
