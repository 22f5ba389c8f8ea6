"""Describe how the numbers were measured: the last section of docs/benchmarks.md.

It names the servers' size, the connections and each baseline's parameters, so it reads them from
the modules that set them rather than repeating them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import balance
import flood
import footprint
import population
import postgres
import proxied
import throughput
from hashing import MEMORY_KIB, PARALLELISM, TIME_COST
from rig import CPUS, FEW_USERS, LOGIN_CONNECTIONS, PAGE_CONNECTIONS, SLOTS, THREADS, USER, WORKERS


def describe(options: argparse.Namespace, elapsed: float) -> list[str]:
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
        " `bench/bare.py` runs a bare Flask app through yupnope's own `server()` function"
        " (granian's WSGI mode: the same workers, threads, listener per worker, deadlines and"
        " access log).",
        f"- One user, `{USER}`, made with `yupnope users add {USER} --password-stdin` on each"
        " instance.",
        f"- Load: wrk with one thread, {LOGIN_CONNECTIONS} connections for logins and"
        f" {PAGE_CONNECTIONS} keep-alive ones for pages unless said; `bench/request.lua` sends"
        " the form, the session cookie or the bearer token and checks every answer. Medians and"
        " p99 come from wrk's latency histogram (a request that got no answer within wrk's 5 s"
        " timeout is not in it). B1, B2, B2-api and B8 miss their target on any `503` (the"
        " hashing gate's queue full), whatever their ratio.",
        f"- B1's baseline: argon2-cffi's `PasswordHasher.verify` of a real hash at"
        f" m={MEMORY_KIB} KiB, t={TIME_COST}, p={PARALLELISM} in {CPUS} processes started"
        " together, each verifying for the same time; their rates summed. When the servers'"
        " hashing slots outnumber the cores, an extra run (not in the ratio) has as many"
        " processes as slots. The run with argon2 at m=8 KiB, t=1 (a third server, its own"
        " instance, not in the ratio) shows what a login costs besides the hash."
        f" Target ≥ {throughput.LOGINS:.2f}.",
        f"- B2 and B2-api: ≥ {throughput.PAGES:.2f}, the goal {throughput.PAGES_GOAL:.2f} shown"
        " beside. B2-api's bearer token is an API session's, from one `POST /api/v1/sessions`"
        " with the user's name and password as JSON; it sends `GET /api/v1/me` with"
        " `Authorization: Bearer …`. Both are measured against the same bare app, each with its"
        " own interleaved runs of it.",
        "- B9: the check as nginx asks it, `GET /auth/request` with the session cookie and"
        " `X-Original-URL`, against the same bare app, ≥ the same targets as B2. The instance's"
        " `yupnope.toml` lets every signed-in user in (`servers.ACCESS`)."
        f" B9/nginx: nginx (Debian's, {proxied.NGINX_WORKERS} worker, no access log) runs"
        " `deploy/forward-auth/nginx.conf` with yupnope's and the app's addresses swapped for the"
        " bench's servers, free ports on 127.0.0.1, and plain HTTP (the certificates dropped):"
        " TLS would cost both sides the same and say nothing of the check. The side without any"
        " auth is the file's app server again on a port of its own, `auth_request` taken out."
        f" wrk sends `GET /` with `Host: {proxied.APP_HOST}` and the session cookie to both over"
        f" {proxied.CONNECTIONS} keep-alive connection(s), one page at a time: more, and the"
        " checked side saturates the cores, so its p99 is wrk's queue. Only a `200` counts; any"
        " other answer or socket error stops the bench. The ratio divides the mean of the"
        f" checked side's run p99s by the other's, ≤ {proxied.LATENCY:.1f}. *CPU per answer* is"
        " nginx's, yupnope's and the app's together.",
        "- Balance (rows `B1/balance`, `B2/balance`, `B2-api/balance`): the server's CPU time"
        " split by worker process (granian's workers: the main process's children that serve,"
        " multiprocessing's resource tracker aside) from `/proc/<pid>/stat`, over each run of"
        " yupnope's side; the ratio is the busiest worker's over the least busy one's in the"
        f" worst run, judged ≤ {balance.CEILING:.1f}. Each worker listens on a socket of its own"
        " (`SO_REUSEPORT`) and a keep-alive connection stays with the worker the kernel gave it"
        " to, so pages show how wrk's connections fell; logins (a connection each) show how the"
        " kernel spreads new connections. Every run is kept as it came. The bare app's split"
        " is shown beside B2's and B2-api's. B8's split is under *Every run*, not judged.",
        "- B3: logins with 1 connection (the time of each answer, without waiting for a hashing"
        " slot), interleaved; (unknown − wrong) / wrong of the mean of each side's run medians.",
        f"- B4: a fresh server of its own, whose process tree's PSS (`/proc/<pid>/smaps_rollup`)"
        " is summed every 50 ms by a thread while wrk logs in with the right password over"
        f" {LOGIN_CONNECTIONS} connections (warm-up included), once per round; the ratio is the"
        f" largest sum ÷ {footprint.BUDGET_MIB} MiB, the issue's budget: the one target that is"
        " not a baseline of the same run, since memory does not shrink on a busy machine.",
        "- B4/flood and B5: a server of their own. Before any flood, two page warm-ups, each"
        " followed by each process's PSS over 1 s at idle: the first with the pages' own"
        f" {flood.PAGE_CONNECTIONS} connections, the second with {flood.FLOOD_CONNECTIONS}"
        " connections asking for `GET /yup` anew each time (every request thread of both"
        " workers runs, and a burst of requests queues). *base* is the idle tree's PSS after"
        " the second, divided by the workers, so the main process's share is in it as it is in"
        " the peak, and the budget's K × 20 MiB per worker is left for the hashing. Each round"
        f" then has two sides: wrk with {flood.PAGE_CONNECTIONS} keep-alive connections on"
        " `GET /yup` with the session cookie, alone, and the same while a second wrk keeps"
        f" {flood.FLOOD_CONNECTIONS} connections posting the login form with a wrong password"
        " (the flood starts with the pages' warm-up and ends a second after their run). The"
        " flood opens a connection per request (`Connection: close`), as many clients would;"
        " kept alive, each would stay with the worker that took it. The pages stay kept alive,"
        " as a browser's do. Meanwhile a thread sums the PSS and RSS of the main process and"
        " every worker every 50 ms; B4/flood's ratio, shown but no longer judged (issue 14 moved"
        " B4 to the logins above), is the largest PSS sum of any flood ÷ (workers × (base + K ×"
        f" {flood.HASH_MIB} MiB)). RSS counts the pages the workers share with the main process"
        " once in each, so it is shown, not judged. After each side the bench waits for the"
        " server to go idle (its queued logins answered) before the next. The hashing gate's"
        " `503`s are expected here and counted. B5's ratio divides the mean of the flood sides'"
        " p99 by the mean of the quiet sides'.",
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
        "- B4, the balance rows, B6, B7 and B9/nginx are not profiled on a miss: py-spy shows"
        " where CPU time goes, not what holds memory (B4) nor how the kernel spread the"
        " connections (balance); B6 would profile the same code as B1 (its difference is in the"
        " database); the import is a command, not a server under wrk's load (B7); nginx is no"
        " Python, and the check under load is B9's own row (B9/nginx).",
    ]
