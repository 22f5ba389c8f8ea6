"""Measure yupnope against its floor and ceiling, side by side, and write docs/benchmarks.md.

``make bench`` runs this. Each workload is a ratio of yupnope to a baseline measured in the same
run, the two interleaved (A B B A), so a machine that is slow or busy moves both alike. Load comes
from wrk against real ``yupnope serve`` processes on a fresh temporary instance, with OWASP's
argon2 parameters and the throttle limits raised out of the way, so every attempt is hashed.

- B1 (``throughput.py``): successful ``POST /login`` per second, against raw argon2 verifies
  per second in one process per CPU (argon2-cffi directly, the same parameters).
- B2 (``throughput.py``): logged-in ``GET /yup`` per second, against a bare Flask app that
  returns a constant, served by the very same granian setup (``bench/bare.py``).
- B2-api (``throughput.py``): ``GET /api/v1/me`` with a bearer token, against the same.
- B9 (``throughput.py``): a proxy's signed-in forward-auth check, ``/auth/request``, against
  the same; B9/nginx (``proxied.py``): the p99 of the bare app's page through nginx with
  deploy/forward-auth/nginx.conf's check, against the same nginx without any auth.
- B1, B2 and B2-api each add a balance row (``balance.py``): the busiest worker's CPU over the
  least busy one's.
- B3 (``enumeration.py``): median latency of ``POST /login`` for an unknown name against a
  wrong password.
- B4 (``footprint.py``): peak memory while 4 connections per CPU log in, against 160 MiB.
- B4/flood and B5 (``flood.py``): peak memory during 500 concurrent logins against a budget
  (shown, not judged), and a logged-in user's p99 during that flood against without it.
- B6 (``population.py``): login latency with 1,000,000 users against with 100.
- B7 (``imports.py``): ``yupnope users import`` of 10,000 users against raw argon2 hashes.
- B8: B1 and B2 again with PostgreSQL (``postgres.py``) instead of SQLite.

A missed target gets a py-spy profile of the server under that load, in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

import chart
import enumeration
import flood
import footprint
import imports
import machine
import method
import population
import postgres
import proxied
import report
import servers
import throughput
from hashing import hasher
from profiles import profile
from report import Result
from rig import CPUS, FEW_USERS, SLOTS, THREADS, USER, WORKERS, login
from servers import Server
from throughput import POSTGRES

ROOT = Path(__file__).resolve().parent.parent


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
    if wanted & {"B1", "B2", "B2-api", "B3", "B9"}:
        envs["yupnope"] = servers.environment(folder / "instance")
        servers.let_signed_in_users_in(folder / "instance")
    if wanted & {"B2", "B2-api", "B9"} or ("B8" in wanted and schema is not None):
        envs["bare"] = servers.environment(folder / "bare")
    if "B1" in wanted:
        # The same server with argon2 at its cheapest: what a login costs besides the hash.
        envs["cheap"] = servers.environment(folder / "cheap")
        envs["cheap"].update(YUPNOPE_ARGON2_MEMORY_KIB="8", YUPNOPE_ARGON2_TIME_COST="1")
    if "B4" in wanted:
        # A server of B4's own: the flood's measures its idle base before any hashing.
        envs["footprint"] = servers.environment(folder / "footprint")
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


#: Every workload, for --only. B4 and B5 are measured together: either runs both.
WORKLOADS = ["B1", "B2", "B2-api", "B3", "B4", "B5", "B6", "B7", "B8", "B9"]


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
    wanted = set(options.only or WORKLOADS)
    needed = ["wrk", "yupnope"] + (["nginx"] if "B9" in wanted else [])
    for name in needed + ([] if options.no_profile else ["py-spy"]):
        servers.program(name)
    described = machine.describe(ROOT, CPUS)
    password = secrets.token_urlsafe(18)
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
        bare = [
            sys.executable,
            str(ROOT / "bench" / "bare.py"),
            "--host=127.0.0.1",
            "--port={port}",
        ]
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
            results.extend(throughput.bench_b1(found, password, timing))
        if "B2" in wanted:
            results.extend(throughput.bench_b2(found, cookies["yupnope"], timing))
        if "B2-api" in wanted:
            token = servers.api_token(found["yupnope"], USER, password)
            results.extend(throughput.bench_b2_api(found, token, timing))
        if "B9" in wanted:
            results.extend(throughput.bench_b9(found, cookies["yupnope"], timing))
            proxy = proxied.start(started, found, folder)
            results.append(proxied.bench_b9_nginx(proxy, cookies["yupnope"], timing))
        if "B3" in wanted:
            results.append(enumeration.bench_b3(found, password, timing))
        if "B4" in wanted:
            results.append(footprint.bench_b4(found, found["footprint"], password, timing))
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
            results.extend(one for one in both if one.id.split("/")[0] in wanted)
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
            results.append(throughput.not_run(unreachable))
        elif "B8" in wanted:
            results.extend(throughput.bench_b1(found, password, timing, on=POSTGRES))
            results.extend(throughput.bench_b2(found, cookies["pg"], timing, on=POSTGRES))
        for result in results:
            if result.met or result.skipped or not result.judged or options.no_profile:
                continue
            for load in result.loads:
                print(f"{result.id} missed its target: profiling {load.label}", flush=True)
                summary = profile(load, found[load.server], options.profile_seconds, folder)
                heading = f"**{load.label}**\n\n" if len(result.loads) > 1 else ""
                result.profile += f"{heading}{summary}\n\n"
    elapsed = time.monotonic() - began
    output: Path = options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    chart.draw(results, output.with_suffix(".png"))
    output.write_text(
        report.markdown(results, described, method.describe(options, elapsed), output)
    )
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
