"""Test that slow clients on a real `yupnope serve` neither stop the pages nor stay for good.

The outside review held 30 connections that sent half a request line, and 50 that trickled a
header every 3 s: the server (gunicorn then) stopped answering `/healthz`, and closed none of
them. The head of a request now has HEAD_DEADLINE_MS to arrive, and no request thread waits
for it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from helpers import LiveServer
from yupnope.cli.serve import HEAD_DEADLINE_MS

pytestmark = pytest.mark.live

#: Slow connections held at once: the review's 30 and 50, many times over.
SLOW = 1000

#: Seconds a page may take to answer while the slow connections are held.
PAGE_TIMEOUT = 2.0


@contextlib.contextmanager
def connections(
    server: LiveServer, count: int, first_bytes: bytes
) -> Iterator[list[socket.socket]]:
    """Hold ``count`` connections that sent ``first_bytes``, then nothing; close them after."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(first_bytes)
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


def healthz_answers(server: LiveServer, times: int) -> list[int]:
    """Ask for /healthz ``times`` times, each on a new connection; return the statuses."""
    return [
        requests.get(server.url + "/healthz", timeout=PAGE_TIMEOUT).status_code
        for _ in range(times)
    ]


def closed_by_server(held: list[socket.socket], deadline: float) -> int:
    """Wait until ``deadline`` (monotonic) for the server to close the connections; count them."""
    selector = selectors.DefaultSelector()
    for sock in held:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    while closed < len(held) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(sock)
                closed += 1
    selector.close()
    return closed


def test_half_sent_request_lines_hold_no_thread_and_are_closed(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()
    started = time.monotonic()
    with connections(server, SLOW, b"GET /heal") as held:
        assert healthz_answers(server, 20) == [200] * 20
        margin = 5.0
        deadline = started + HEAD_DEADLINE_MS / 1000 + margin
        assert closed_by_server(held, deadline) == SLOW


def test_a_header_trickled_forever_is_cut_off_at_the_deadline(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(workers=1)
    with connections(server, 50, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") as held:
        started = time.monotonic()
        limit = started + HEAD_DEADLINE_MS / 1000 + 5
        open_ones = list(held)
        # One header line a second on every connection, as long as the server keeps it open.
        while open_ones and time.monotonic() < limit:
            for sock in list(open_ones):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    open_ones.remove(sock)
            assert healthz_answers(server, 1) == [200]
            time.sleep(1)
        # A send can still succeed after the server closed; the close then shows on reading.
        assert closed_by_server(open_ones, time.monotonic() + 1) == len(open_ones)
