"""Compare the servers `yupnope serve` could run on, and print the findings as Markdown.

Each candidate serves yupnope and a bare Flask app (same workers, threads) on the loopback:
pages from few keep-alive clients against the bare app in the same run, each worker's CPU,
memory idle and under logins, slow clients against /healthz, a request in flight on TERM and HUP.
From the repository root: ``python bench/candidates.py [NAME…] > /tmp/candidates.md``.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import memory
import servers
import wrk
from a2wsgi import WSGIMiddleware
from flask import Flask
from gunicorn.app.base import BaseApplication
from memory import MIB, workers_of

from yupnope import config, create_app
from yupnope.hashing import hashing_slots

BENCH = Path(__file__).resolve().parent
#: Each server's workers and threads, and the seconds of a measured wrk run (as issue 14's).
WORKERS, THREADS, SECONDS = 2, 12, 10
#: granian's deadline for a request's head (s), and the connections a worker serves at once (as
#: gunicorn's worker_connections); the prototype of `yupnope serve` uses the same.
HEADER_TIMEOUT, CONNECTIONS = 10, 1000
#: How long slow connections are held open: past HEADER_TIMEOUT, to see who closes them.
HOLD = HEADER_TIMEOUT + 3
USER, PASSWORD = "bench", "a long bench password, 2026"
COLUMNS = (
    "server | `/yup` ÷ bare, wrk -c8 | worst p99 of `/yup` | worker balance (yup, yup, bare,"
    " bare; 10 s) | wrong answers | PSS idle / peak under logins | /healthz during 30 half"
    " request lines | during 200 trickling headers | during 1,000 half request lines | HUP; TERM"
)
CANDIDATES = ("gunicorn", "gunicorn-reuseport", "granian", "uvicorn-a2wsgi")
bare = Flask("bare")


@bare.get("/")
def constant() -> str:
    """Return the same few bytes every time: the ceiling of a page."""
    return "yup\n"


@bare.get("/sleep")
def sleep() -> str:
    """Answer after 2 s, so a signal can arrive while the request is in flight."""
    time.sleep(2)
    return "slept\n"


#: uvicorn's factory of the bare app behind a2wsgi: uvicorn reads each request, threads run it.
asgi_bare = functools.partial(WSGIMiddleware, bare, workers=THREADS)


def asgi_yupnope() -> Any:
    """Return yupnope's app behind a2wsgi, as ``asgi_bare`` does the bare one."""
    return WSGIMiddleware(create_app(), workers=THREADS)


class Gunicorn(BaseApplication):  # type: ignore[misc]
    """Run the gunicorn setup `yupnope serve` had (gthread), a listener per worker if asked."""

    def __init__(self, app: str, port: int, reuse_port: bool) -> None:
        self.app = app
        self.options = dict(bind=f"127.0.0.1:{port}", workers=WORKERS, threads=THREADS)
        self.options.update(worker_class="gthread", accesslog="-", forwarded_allow_ips="")
        # gunicorn 27 opens one SO_REUSEPORT listener in each worker (arbiter.spawn_worker).
        self.options.update(reuse_port=reuse_port, control_socket_disable=True)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return bare if self.app == "bare" else create_app()


def command(candidate: str, app: str) -> list[str]:
    """Return the command line that serves ``app`` ("yupnope" or "bare") on ``candidate``."""
    if candidate.startswith("gunicorn"):
        return [sys.executable, str(BENCH / "candidates.py"), "serve", candidate, app, "{port}"]
    address = f"--host 127.0.0.1 --port {{port}} --workers {WORKERS}".split()
    if candidate == "granian":
        rest = f"--interface wsgi --http 1 --blocking-threads {THREADS} --access-log"
        rest += f" --http1-header-read-timeout {HEADER_TIMEOUT * 1000} --backpressure {CONNECTIONS}"
        rest += " --factory yupnope:create_app" if app == "yupnope" else " candidates:bare"
        return [servers.program("granian"), "--working-dir", str(BENCH), *address, *rest.split()]
    # gunicorn's keep-alive (2 s); uvicorn has no deadline for a request's headers at all.
    rest = f"--factory candidates:asgi_{app} --timeout-keep-alive 2"
    return [servers.program("uvicorn"), *address, *rest.split(), "--app-dir", str(BENCH)]


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds of one process, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # state, ppid…
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_run(server: servers.Server, load: wrk.Load, seconds: int) -> tuple[float, ...]:
    """Run wrk once; return its rate, p99 (ms), busiest ÷ least busy worker's CPU, errors."""
    pids = workers_of(server.process.pid)
    before = {pid: cpu_seconds(pid) for pid in pids}
    numbers = wrk.finish_wrk(wrk.start_wrk(load, server, seconds), seconds)
    used = [cpu_seconds(pid) - before[pid] for pid in pids]
    balance = max(used) / min(used) if min(used) > 0 else float("inf")
    rate = numbers["expected"] / (numbers["duration_us"] / 1e6)
    print(f"    {load.label}: {rate:,.0f}/s, balance {balance:.2f}", file=sys.stderr, flush=True)
    return rate, numbers["p99_us"] / 1000, balance, numbers["unexpected"]


def throughput(yup: servers.Server, base: servers.Server, cookie: str, seconds: int) -> str:
    """Measure signed-in pages against the bare app, interleaved A B B A; return table cells."""
    loads = {"yup": (yup, wrk.Load("yup", yup.name, "/yup", 8, cookie=cookie))}
    loads["bare"] = (base, wrk.Load("bare", base.name, "/", 8))
    # Short runs first: the warm-up, and more draws of how wrk's connections fall on workers.
    short = [wrk_run(*loads[name], 2)[2] for name in ("yup", "bare") for _ in range(5)]
    runs: dict[str, list[tuple[float, ...]]] = {"yup": [], "bare": []}
    for name in ("yup", "bare", "bare", "yup"):
        runs[name].append(wrk_run(*loads[name], seconds))
    rate = {name: statistics.median(run[0] for run in runs[name]) for name in runs}
    every = runs["yup"] + runs["bare"]
    return (
        f"{rate['yup'] / rate['bare']:.2f} ({rate['yup']:,.0f} vs {rate['bare']:,.0f}/s)"
        f" | {max(run[1] for run in runs['yup']):.1f} ms"
        f" | {', '.join(f'{run[2]:.2f}' for run in every)}; short runs over 1.3:"
        f" {sum(b > 1.3 for b in short)} of 10 | {sum(run[3] for run in every):.0f}"
    )


def get(port: int, path: str, timeout: float) -> str:
    """Send one GET on a new connection; return its status, or the name of its error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return str(connection.getresponse().status)
    except OSError as error:
        return type(error).__name__
    finally:
        connection.close()


def probe(port: int, count: int = 20, timeout: float = 5.0) -> str:
    """Ask for /healthz ``count`` times on new connections; give up after three failures."""
    times, failures = [], 0
    while len(times) < count and failures < 3:
        started = time.monotonic()
        if get(port, "/healthz", timeout) == "200":
            times.append(time.monotonic() - started)
        else:
            failures += 1
    # Of at most 20 answers, the 99th percentile is the slowest.
    p99 = f", p99 {max(times) * 1000:.0f} ms" if times else ""
    return f"{len(times)}/{len(times) + failures} answered{p99}"


def ended(sock: socket.socket) -> bool:
    """Close ``sock``; return whether the server had closed it or answered on it (400, 408)."""
    with sock:
        sock.setblocking(False)
        try:
            sock.recv(1024)
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True


def slow_clients(port: int, count: int, trickle: bool) -> tuple[str, bool]:
    """Hold ``count`` slow connections for HOLD s, probing /healthz; say how it went."""
    held: list[socket.socket] = []
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if trickle else b"GET /heal"
    for _ in range(count):
        with contextlib.suppress(OSError):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            held[-1].sendall(first)
    stop = threading.Event()

    def drip() -> None:
        while trickle and not stop.wait(3):
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Drip: 1\r\n")

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    time.sleep(1)  # let the server take them up
    answered = probe(port)
    time.sleep(max(0.0, HOLD - (time.monotonic() - started)))
    stop.set()
    closed = sum(ended(sock) for sock in held)
    said = f"{answered}; {closed}/{len(held)} closed by the server within {HOLD} s"
    return said, answered.startswith("20/20")


def login_memory(server: servers.Server, seconds: int) -> str:
    """Return the tree's PSS idle and at its peak under 8-connection logins (real argon2)."""
    idle = sum(memory.idle(server.process.pid).values())
    load = wrk.login("logins", server.name, (USER, PASSWORD), "/yup", 8)
    with memory.Sampler(server.process.pid) as sampler:
        numbers = wrk.finish_wrk(wrk.start_wrk(load, server, seconds), seconds)
    peak = sampler.peak.pss
    return f"{idle / MIB:.0f} / {peak / MIB:.0f} MiB ({numbers['expected']} logins)"


def in_flight(server: servers.Server, signum: signal.Signals) -> str:
    """Send ``signum`` during a 2 s request; say whether it finished and the server's state."""
    answer: list[str] = []
    asker = threading.Thread(target=lambda: answer.append(get(server.port, "/sleep", 15)))
    asker.start()
    time.sleep(0.5)
    os.kill(server.process.pid, signum)
    asker.join(15)
    if signum == signal.SIGHUP:
        time.sleep(3)
        after = "serves after" if get(server.port, "/", 5) == "200" else "down after"
    else:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=35)
        after = "still running 35 s after" if server.process.poll() is None else "exited"
    return f"{signum.name}: in-flight {answer[0] if answer else 'no answer'}, {after}"


def compare(candidate: str, folder: Path, seconds: int) -> str:
    """Measure one candidate and return its Markdown table row."""
    env = servers.environment(folder / candidate)
    # What `yupnope serve` sets before its workers start: a connection per thread, hash slots.
    env[config.env_name("database_pool_size")] = str(THREADS)
    env[config.env_name("hash_concurrency")] = str(hashing_slots(os.cpu_count() or 1, WORKERS))
    env["PYTHONPATH"] = str(BENCH)
    servers.add_user(env, USER, PASSWORD)
    started: list[servers.Server] = []
    try:
        yup, base = (
            servers.start(started, f"{candidate}-{app}", command(candidate, app), env, folder)
            for app in ("yupnope", "bare")
        )
        servers.wait_ready(yup, "/healthz")
        servers.wait_ready(base, "/")
        cookie = servers.session_cookie(yup, USER, PASSWORD)
        cells = [throughput(yup, base, cookie, seconds), login_memory(yup, 8)]
        cells.append(slow_clients(yup.port, 30, trickle=False)[0])
        said, ok = slow_clients(yup.port, 200, trickle=True)
        # 1,000, the bound for a direct deployment, only where 200 were survived.
        cells += [said, slow_clients(yup.port, 1000, trickle=False)[0] if ok else "not tried"]
        cells.append(in_flight(base, signal.SIGHUP) + "; " + in_flight(base, signal.SIGTERM))
        return f"| {candidate} | " + " | ".join(cells) + " |"
    finally:
        servers.stop(started)


def main() -> None:
    """Measure every candidate asked for and print the findings as Markdown."""
    if sys.argv[1:2] == ["serve"]:
        _, _, candidate, app, port = sys.argv
        Gunicorn(app, int(port), reuse_port=candidate == "gunicorn-reuseport").run()
        return
    only = sys.argv[1:] or CANDIDATES  # names of candidates, to measure fewer
    packages = ("gunicorn", "granian", "uvicorn", "a2wsgi", "flask")
    print(f"{WORKERS} workers × {THREADS} threads on {os.cpu_count()} CPUs, {platform.platform()}")
    print(", ".join(f"{name} {metadata.version(name)}" for name in packages) + "\n")
    print(f"| {COLUMNS} |\n" + "| --- " * (COLUMNS.count("|") + 1) + "|")
    with tempfile.TemporaryDirectory(prefix="bench-candidates-") as folder:
        for candidate in only:
            print(f"measuring {candidate}", file=sys.stderr, flush=True)
            print(compare(candidate, Path(folder), SECONDS), flush=True)


if __name__ == "__main__":
    main()
