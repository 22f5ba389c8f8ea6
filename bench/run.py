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
- B4, B5 (``flood.py``): peak memory during 500 concurrent logins against a budget, and a
  logged-in user's p99 during that flood against without it.
- B6 (``population.py``): login latency with 1,000,000 users against with 100.
- B7 (``imports.py``): ``yupnope users import`` of 10,000 users against raw argon2 hashes.
- B8: B1 and B2 again with PostgreSQL (``postgres.py``) instead of SQLite.

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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import flood
import imports
import measurements
import population
import postgres
import report
import servers
from measurements import (
    MEMORY_KIB,
    PARALLELISM,
    TIME_COST,
    Load,
    Timing,
    cpu_ms,
    hasher,
    interleave,
    measure,
    median,
    rate,
    raw_argon2,
    refused,
)
from profiles import profile
from report import Result, at_least
from servers import Server

ROOT = Path(__file__).resolve().parent.parent
CPUS = os.cpu_count() or 1

#: Workers per server as ``yupnope serve`` picks them when not told (cli.py: one per CPU).
WORKERS = CPUS

#: Threads per worker as ``yupnope serve`` picks them when not told (cli.py: six per CPU).
THREADS = 6 * CPUS

#: Hashing slots per worker, given to every server as YUPNOPE_HASH_CONCURRENCY so that no
#: ratio or budget moves with the default: the CPUs shared out among the workers, which is
#: what ``yupnope serve`` picks by default since the slots stopped being one per CPU each.
SLOTS = -(-CPUS // WORKERS)

#: Concurrent logins: enough to keep every core hashing, and no more than one worker's gate
#: holds (its slots plus four waiting per CPU, services.QUEUE_PER_CPU), so even if every
#: connection lands on the same worker none is refused with 503.
LOGIN_CONNECTIONS = 4 * CPUS

#: Concurrent page views: past the point where either server's throughput stops rising.
PAGE_CONNECTIONS = 8 * CPUS

#: Users in B6's small database (the issue's number); --users sets the large one.
FEW_USERS = 100

USER = "bench"
UNKNOWN_USER = "nobody-here"


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


def login(username: str, password: str, location: str, label: str, server: str) -> Load:
    """Return the load of logging in as ``username``, answered by a 303 to ``location``."""
    return measurements.login(label, server, (username, password), location, LOGIN_CONNECTIONS)


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
        **at_least(rate(web) / rate(raw), 0.95),
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
        **at_least(rate(ours) / rate(base), 0.70),
        runs=ran,
        loads=[yup],
    )


def bench_b3(found: dict[str, Server], password: str, timing: Timing) -> Result:
    """Measure B3: median login latency for an unknown name against a wrong password."""
    rounds, seconds, warmup = timing
    print("B3: POST /login, unknown name against wrong password", flush=True)
    # One connection: a timing attack times single answers, and the difference between the
    # two paths is in each answer's own time. With several connections each answer also waits
    # for a hashing slot, and by Little's law that wait is the connections over the throughput,
    # so an 8-second run's few per cent of throughput noise moved the medians 5-12 % either way.
    unknown, wrong = (
        replace(login(*sent, "/nope", label, "yupnope"), connections=1)
        for sent, label in (
            ((UNKNOWN_USER, password), "`POST /login`, unknown name"),
            ((USER, password + "-not"), "`POST /login`, wrong password"),
        )
    )
    unknowns, wrongs, ran = interleave(
        rounds,
        lambda: measure(unknown, found, seconds, warmup),
        lambda: measure(wrong, found, seconds, warmup),
    )
    a, b = median(unknowns), median(wrongs)
    difference = 100 * (a - b) / b
    return Result(
        id="B3",
        workload="median latency of `POST /login`, unknown name vs wrong password"
        f" ({unknown.connections} connection)",
        measured=f"{a:.1f} ms vs {b:.1f} ms ({difference:+.1f}%);"
        f" {rate(unknowns):,.1f} vs {rate(wrongs):,.1f} answers/s; CPU {cpu_ms(unknowns):.1f}"
        f" vs {cpu_ms(wrongs):.1f} ms per answer{refused(unknowns + wrongs)}",
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
        f" each side {options.seconds} s after {options.warmup} s of warm-up and a wait until"
        " the server has answered what the warm-up left queued (otherwise the measured run's"
        " first logins find the hashing queue full and get `503`); the whole benchmark took"
        f" {elapsed:.0f} s.",
        f"- Servers: `yupnope serve --workers {WORKERS} --threads {THREADS}` (the defaults here),"
        " each on a fresh temporary instance of its own (SQLite unless said) at OWASP's argon2id"
        " parameters, with `YUPNOPE_THROTTLE_FREE_FAILURES`, `_ACCOUNT_LIMIT`, `_ADDRESS_LIMIT`"
        " and `_GLOBAL_LIMIT` at 10⁹ so every attempt is hashed, and"
        f" `YUPNOPE_HASH_CONCURRENCY={SLOTS}` given explicitly (K = ⌈{CPUS} CPUs / {WORKERS}"
        " workers⌉ hashing slots per worker, what `serve` picks by default once the slots are"
        " shared out among the workers), so no ratio or budget moves with the default."
        " `bench/bare.py` runs yupnope's own gunicorn `Server` class (worker class, workers,"
        " threads, access log) around a bare Flask app.",
        f"- One user, `{USER}`, made with `yupnope users add {USER} --password-stdin` on each"
        " instance.",
        f"- Load: wrk with one thread, {LOGIN_CONNECTIONS} connections for logins and"
        f" {PAGE_CONNECTIONS} for pages unless said; `bench/request.lua` sends the form or the"
        " session cookie and checks every answer. Medians and p99 come from wrk's latency"
        " histogram (a request that got no answer within wrk's 5 s timeout is not in it).",
        f"- B1's baseline: argon2-cffi's `PasswordHasher.verify` of a real hash at"
        f" m={MEMORY_KIB} KiB, t={TIME_COST}, p={PARALLELISM} in {CPUS} processes started"
        " together, each verifying for the same time; their rates summed. When the servers'"
        " hashing slots outnumber the cores, an extra run (not in the ratio) has as many"
        " processes as slots. The run with argon2 at m=8 KiB, t=1 (a third server, its own"
        " instance, not in the ratio) shows what a login costs besides the hash.",
        "- B3: logins with 1 connection (the time of each answer, without waiting for a hashing"
        " slot), interleaved; (unknown − wrong) / wrong of the mean of each side's run medians.",
        "- B4 and B5: a server of their own. Before any flood, two page warm-ups, each followed"
        " by each process's PSS (`/proc/<pid>/smaps_rollup`) over 1 s at idle: the first with"
        f" the pages' own {flood.PAGE_CONNECTIONS} connections, the second with"
        f" {flood.FLOOD_CONNECTIONS} connections asking for `GET /yup` anew each time (every"
        " request thread of both workers runs, and a burst of requests queues). *base* is the"
        " idle tree's PSS after the second, divided by the workers, so the arbiter's share is in"
        " it as it is in the peak, and the budget's K × 20 MiB per worker is left for the"
        " hashing. Each round then"
        f" has two sides: wrk with {flood.PAGE_CONNECTIONS} keep-alive connections on"
        " `GET /yup` with the session cookie, alone, and the same while a second wrk keeps"
        f" {flood.FLOOD_CONNECTIONS} connections posting the login form with a wrong password"
        " (the flood starts with the pages' warm-up and ends a second after their run). The"
        " flood opens a connection per request (`Connection: close`), as many clients would;"
        " kept alive, gunicorn would keep each of its connections with the worker that took it."
        " The pages stay kept alive, as a browser's do. Meanwhile a thread sums the PSS and RSS"
        f" of the arbiter and every worker every 50 ms; B4's ratio is the largest PSS sum of"
        f" any flood ÷ (workers × (base + K × {flood.HASH_MIB} MiB)). RSS counts the pages the"
        " workers share with the arbiter once in each, so it is shown, not judged. After each"
        " side the bench waits for the server to go idle (its queued logins answered) before"
        " the next. The hashing gate's `503`s are expected and counted. B5's ratio divides the"
        " mean of the flood sides' p99 by the mean of the quiet sides'.",
        f"- B6: two more servers, one with {FEW_USERS:,} users and one with {options.users:,}"
        " (each counting `bench`). The others go straight into SQLite with SQLAlchemy Core,"
        f" executemany batches of {population.BATCH:,} rows in one transaction after"
        " `yupnope users add` made the schema: names `user0000000`, `user0000001`, … (their own"
        " keys), all sharing one real argon2id hash at the server's parameters. Successful"
        " logins of `bench` with 1 connection (no queueing for a hashing slot), interleaved;"
        " the ratio divides the mean of the large side's run medians by the small side's.",
        f"- B7: a JSON file in the tutorial's shape of {options.import_users:,} users with random"
        " 16-character passwords (`secrets.token_urlsafe(12)`, all past the policy), imported by"
        " `yupnope users import FILE` into a fresh instance whose schema `yupnope db upgrade`"
        " made first. The whole command is timed, from start to exit, and nothing subtracted"
        " (start-up, reading and checking the file, the insert). The baseline is argon2-cffi's"
        f" `PasswordHasher.hash` at the same parameters in {CPUS} processes for"
        f" {options.seconds} s before the import and again after it (A B A: one import is too"
        " long to run twice), their rates summed per run and averaged over time.",
        "- B8: B1 and B2 again against a server whose `YUPNOPE_DATABASE_URL` is PostgreSQL"
        f" (`{postgres.shown()}`; `YUPNOPE_BENCH_POSTGRES_URL` overrides it), in a schema of the"
        " bench's own that it drops at the end. The server's backends are found by the"
        " connections' `application_name` and their CPU time counted as the server's, so CPU"
        " per answer is the whole cost, database included. B1's extra runs (not in the ratio) do"
        " not depend on the database and are not repeated; the bare app is B2's.",
        "- The CPU ratios under *measured* divide CPU time per answer (baseline ÷ yupnope)."
        " Other programs move them much less than the rates, which depend on the share of the"
        " cores each side gets: when the machine was busy, they are the better guide.",
        "- B4, B6 and B7 are not profiled on a miss: py-spy shows where CPU time goes, not what"
        " holds memory (B4); B6 would profile the same code as B1 (its difference is in the"
        " database); the import is a command, not a server under wrk's load (B7).",
    ]


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so the servers are stopped on the way out."""
    raise SystemExit(128 + signum)


def _instances(
    wanted: set[str],
    folder: Path,
    password: str,
    options: argparse.Namespace,
    schema: postgres.Schema | None,
) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Make each wanted server's instance with its user; fill B6's. Return them and fill times.

    The bare app needs no instance, but an environment all the same.
    """
    envs: dict[str, dict[str, str]] = {}
    if wanted & {"B1", "B2", "B3"}:
        envs["yupnope"] = servers.environment(folder / "instance")
    if "B2" in wanted or ("B8" in wanted and schema is not None):
        envs["bare"] = servers.environment(folder / "bare")
    if "B1" in wanted:
        # The same server with argon2 at its cheapest: what a login costs besides the hash.
        envs["cheap"] = servers.environment(folder / "cheap")
        envs["cheap"].update(YUPNOPE_ARGON2_MEMORY_KIB="8", YUPNOPE_ARGON2_TIME_COST="1")
    if wanted & {"B4", "B5"}:
        envs["flood"] = servers.environment(folder / "flood")
    if "B6" in wanted:
        envs["small"] = servers.environment(folder / "small")
        envs["large"] = servers.environment(folder / "large")
    if "B8" in wanted and schema is not None:
        envs["pg"] = servers.environment(folder / "pg")
        envs["pg"]["YUPNOPE_DATABASE_URL"] = schema.url
    for name, env in envs.items():
        env["YUPNOPE_HASH_CONCURRENCY"] = str(SLOTS)
        if name != "bare":
            servers.add_user(env, USER, password)
    filled: dict[str, float] = {}
    if "B6" in wanted:
        encoded = hasher().hash(secrets.token_urlsafe(18))
        for name, count in (("small", FEW_USERS), ("large", options.users)):
            print(f"B6: filling an instance with {count:,} users", flush=True)
            # `bench` is one of them already.
            filled[name] = population.fill(envs[name], count - 1, encoded)
    return envs, filled


def _not_run(reason: str) -> Result:
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


#: Every workload, for --only. B4 and B5 are measured together: either runs both.
WORKLOADS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workloads, profile any missed target, print the table and write the report."""
    parser = argparse.ArgumentParser(description="Measure yupnope; write docs/benchmarks.md.")
    parser.add_argument("--seconds", type=int, default=8, help="each measured run (8)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up before each run (2)")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs per workload (2)")
    parser.add_argument("--profile-seconds", type=int, default=6, help="py-spy per load (6)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy on a miss")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, help="run only these")
    parser.add_argument(
        "--users", type=int, default=1_000_000, help="users in B6's large database (1000000)"
    )
    parser.add_argument("--import-users", type=int, default=10_000, help="users B7 imports (10000)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    began = time.monotonic()
    for name in ["wrk", "yupnope"] + ([] if options.no_profile else ["py-spy"]):
        servers.program(name)
    described = report.machine(ROOT, CPUS)
    password = secrets.token_urlsafe(18)
    wanted = set(options.only or WORKLOADS)
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="yupnope-bench-")))
        schema: postgres.Schema | None = None
        unreachable = ""
        if "B8" in wanted:
            try:
                # Entered before the servers' stop is registered, so it is dropped after it.
                schema = stack.enter_context(postgres.schema())
            except postgres.Unreachable as exc:
                unreachable = f"PostgreSQL is not reachable ({exc})"
                print(f"B8: {unreachable}", flush=True)
        envs, filled = _instances(wanted, folder, password, options, schema)
        yupnope = [servers.program("yupnope"), "serve", "--host=127.0.0.1", "--port={port}"]
        bare = [sys.executable, str(ROOT / "bench" / "bare.py"), "--bind=127.0.0.1:{port}"]
        size = [f"--workers={WORKERS}", f"--threads={THREADS}"]
        started: list[Server] = []
        stack.callback(servers.stop, started)
        found: dict[str, Server] = {}
        for name, env in envs.items():
            argv = bare if name == "bare" else yupnope
            helpers = schema.backends if name == "pg" and schema else tuple
            found[name] = servers.start(started, name, argv + size, env, folder, helpers)
        for name, server in found.items():
            servers.wait_ready(server, "/" if name == "bare" else "/healthz")
        cookies = {
            name: servers.session_cookie(found[name], USER, password)
            for name in ("yupnope", "flood", "pg")
            if name in found
        }
        timing = (options.rounds, options.seconds, options.warmup)
        if "B1" in wanted:
            results.append(bench_b1(found, password, timing))
        if "B2" in wanted:
            results.append(bench_b2(found, cookies["yupnope"], timing))
        if "B3" in wanted:
            results.append(bench_b3(found, password, timing))
        if wanted & {"B4", "B5"}:
            both = flood.bench_flood(
                found,
                found["flood"],
                cookies["flood"],
                (USER, password + "-not"),
                SLOTS,
                WORKERS,
                timing,
            )
            results.extend(one for one in both if one.id in wanted)
        if "B6" in wanted:
            logins = tuple(
                replace(
                    login(USER, password, "/yup", f"`POST /login`, {count:,} users", name),
                    connections=1,
                )
                for name, count in (("small", FEW_USERS), ("large", options.users))
            )
            results.append(
                population.bench_b6(
                    found,
                    (logins[0], logins[1]),
                    (FEW_USERS, options.users),
                    (filled["small"], filled["large"]),
                    envs["large"],
                    timing,
                )
            )
        if "B7" in wanted:
            # No YUPNOPE_HASH_CONCURRENCY here: the import's own default, a slot per CPU. Set
            # below the CPUs, it makes the import fail (Busy) rather than run slower.
            env = servers.environment(folder / "import")
            results.append(
                imports.bench_b7(found, env, folder, options.import_users, options.seconds, CPUS)
            )
        if "B8" in wanted and schema is None:
            results.append(_not_run(unreachable))
        elif "B8" in wanted:
            results.append(bench_b1(found, password, timing, on=POSTGRES))
            results.append(bench_b2(found, cookies["pg"], timing, on=POSTGRES))
        for result in results:
            if result.met or result.skipped or options.no_profile:
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
