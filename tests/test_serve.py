"""Test the signals of a real `yupnope serve`: graceful stop, HUP, a dead worker replaced.

A request is kept in flight by sending its head and only half of its body: the view is then
running, waiting for the rest, when the signal arrives.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import requests

from helpers import GOOD_PASSWORD, TIMEOUT, LiveServer

#: Seconds to wait for the server to do what a signal asks.
SETTLE = 20.0


@contextmanager
def request_in_flight(server: LiveServer) -> Iterator[Callable[[], int]]:
    """Start a login with half its body sent; yield what sends the rest and returns the status."""
    body = f"username=alice&password={GOOD_PASSWORD}".encode()
    head = (
        "POST /login HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Sec-Fetch-Site: same-origin\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=SETTLE) as sock:
        sock.sendall(head + body[:10])
        # Time for the worker to hand the request to a thread, which then waits for the body.
        time.sleep(0.5)

        def finish() -> int:
            sock.sendall(body[10:])
            with http.client.HTTPResponse(sock) as response:
                response.begin()
                return response.status

        yield finish


def workers(server: LiveServer) -> set[int]:
    """Return the process ids of the server's workers: its children that serve HTTP."""
    assert server.process is not None
    root = server.process.pid
    children: set[int] = set()
    for listing in Path(f"/proc/{root}/task").glob("*/children"):
        children |= {int(pid) for pid in listing.read_text().split()}
    found = set()
    for pid in children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            # Ended between the listing and now, as a killed worker does.
            continue
        # multiprocessing's resource tracker is a child too, and serves nothing.
        if b"resource_tracker" not in command:
            found.add(pid)
    return found


def wait_for(condition: Callable[[], bool]) -> bool:
    """Return whether ``condition`` became true within SETTLE seconds."""
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def healthz(server: LiveServer) -> int:
    """Return the status of /healthz on a new connection."""
    return requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """Return a live server with two workers."""
    return live_server_factory(workers=2)


def test_term_lets_the_request_in_flight_finish_then_stops(server: LiveServer) -> None:
    assert server.process is not None
    with request_in_flight(server) as finish:
        os.kill(server.process.pid, signal.SIGTERM)
        # Stopping: no new connection is served, the one in flight still is.
        assert wait_for(lambda: not _answers(server))
        assert finish() == 303
    assert server.process.wait(timeout=SETTLE) == 0


def test_hup_starts_new_workers_without_dropping_a_request(server: LiveServer) -> None:
    assert server.process is not None
    before = workers(server)
    assert len(before) == 2
    with request_in_flight(server) as finish:
        os.kill(server.process.pid, signal.SIGHUP)
        # The new workers serve while the old ones finish what they hold.
        assert wait_for(lambda: len(workers(server) - before) >= 1)
        assert healthz(server) == 200
        assert finish() == 303
    assert wait_for(lambda: len(workers(server) - before) == 2 and len(workers(server)) == 2)
    assert healthz(server) == 200


def test_a_worker_that_dies_is_replaced(server: LiveServer) -> None:
    before = workers(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(workers(server)) == 2 and victim not in workers(server))
    assert all(healthz(server) == 200 for _ in range(10))


def _answers(server: LiveServer) -> bool:
    """Return whether /healthz answers on a new connection within a second."""
    try:
        return requests.get(server.url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def signup_form_status(server: LiveServer) -> int:
    """Return the status of the sign-up form: 200 while sign-up is open."""
    return requests.get(server.url + "/signup", timeout=TIMEOUT).status_code


def test_hup_reads_the_settings_again(server: LiveServer) -> None:
    assert server.process is not None
    assert signup_form_status(server) == 200
    settings = server.instance / "yupnope.toml"
    settings.write_text("signup_open = false\n")
    before = workers(server)
    os.kill(server.process.pid, signal.SIGHUP)
    assert wait_for(lambda: not workers(server) & before and len(workers(server)) == 2)
    assert signup_form_status(server) == 403

    # Settings that no longer load keep the server as it was, and say why in its log.
    settings.write_text("signup_open = [\n")
    before = workers(server)
    os.kill(server.process.pid, signal.SIGHUP)
    assert wait_for(lambda: not workers(server) & before and len(workers(server)) == 2)
    assert signup_form_status(server) == 403
    assert "HUP: the settings did not load" in server.log.read_text()

    # A database URL SQLAlchemy cannot open is no reason to stop either.
    settings.write_text('signup_open = false\ndatabase_url = "nosuchdatabase://x"\n')
    before = workers(server)
    os.kill(server.process.pid, signal.SIGHUP)
    assert wait_for(lambda: not workers(server) & before and len(workers(server)) == 2)
    assert signup_form_status(server) == 403
    assert server.process.poll() is None


def test_the_process_workers_fork_from_loads_neither_alembic_nor_redis(instance: Path) -> None:
    # Each worker starts with what that process holds: the migrations' Alembic (about 10 MiB)
    # and redis-py (8 MiB, for a Redis nobody configured) would be in every one of them.
    script = (
        "import sys\n"
        "from yupnope import create_app\n"
        "from yupnope.cli import serve\n"
        "serve._migrate_in_a_child()\n"
        "create_app()\n"
        "print(sorted(name for name in ('alembic', 'redis') if name in sys.modules))\n"
    )
    env = {**os.environ, "YUPNOPE_INSTANCE_PATH": str(instance)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    # The child did migrate.
    with closing(sqlite3.connect(instance / "yupnope.db")) as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
