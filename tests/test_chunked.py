"""Test chunked request bodies on a real `yupnope serve`: refused with 411, never read.

The server undoes the chunking (RFC 9112 7.1) out of the app's sight, and the Flask test client
never sends a chunked body, so these tests write their requests on raw sockets to a live
server, as the outside review's probes did: a malformed body once answered 500 with a
traceback, and one over the limit was cut to the limit and used as a login.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask

from helpers import LiveServer, count_users, send_raw
from yupnope.web.answers import CHECK_PREFIX

pytestmark = pytest.mark.live

#: The largest body the servers here accept, small so an oversized one is quick to send.
LIMIT = 1024

#: Bodies whose chunked framing is broken, and one cut short: none may reach a view.
MALFORMED = {
    "a chunk size that is not hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "a chunk without its CRLF": b"5\r\nhelloXX0\r\n\r\n",
    "a chunk extension without a name": b"5;=x\r\nhello\r\n0\r\n\r\n",
    "a trailer that is no header": b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n",
}


@dataclass(frozen=True)
class Answer:
    """Carry what the server answered a raw request: status, media type and body."""

    status: int
    media_type: str
    body: bytes


def chunked(data: bytes, size: int = 100) -> bytes:
    """Return ``data`` cut into chunks of ``size`` bytes, ended by the last chunk (RFC 9112 7.1)."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def post_chunked(
    server: LiveServer, path: str, body: bytes, media_type: str, cut_short: bool = False
) -> Answer:
    """POST ``body`` (already chunked) to ``path`` as a same-site form; see ``send_raw``."""
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Sec-Fetch-Site: same-origin\r\n"
        f"Content-Type: {media_type}\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    )
    response, answer = send_raw(server, head.encode() + body, cut_short)
    media = (response.getheader("Content-Type") or "").split(";")[0]
    return Answer(response.status, media, answer)


def post_routes(app: Flask) -> list[str]:
    """Return every path that takes a POST and reads its body, pages and API alike.

    Not the forward-auth checks: they read no body, and an app behind the proxy may well take
    a chunked upload (tests/test_forward.py).
    """
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
        and not rule.arguments
        and not rule.rule.startswith(CHECK_PREFIX)
    )


def media_of(path: str) -> str:
    """Return the media type a route reads: JSON under /api, a form elsewhere."""
    return "application/json" if path.startswith("/api/") else "application/x-www-form-urlencoded"


def assert_refused(answer: Answer, path: str, status: int, code: str) -> None:
    """Check a refusal's status and shape: problem+json with ``code`` under /api, else a page."""
    assert answer.status == status, (path, answer)
    if path.startswith("/api/"):
        assert answer.media_type == "application/problem+json", (path, answer)
        assert f'"code":"{code}"'.encode() in answer.body, (path, answer)
    else:
        assert answer.media_type == "text/html", (path, answer)


def test_every_post_route_answers_a_chunked_body_with_411(
    app: Flask, live_server_factory: Callable[..., LiveServer]
) -> None:
    server = live_server_factory(workers=1, max_content_length=LIMIT)
    routes = post_routes(app)
    assert {"/login", "/signup", "/api/v1/sessions", "/api/v1/users"} <= set(routes)
    form = b"username=nobody&password=a+long+enough+guess&next="
    json = b'{"username": "nobody", "password": "a long enough guess"}'
    for path in routes:
        bodies = {
            **MALFORMED,
            "well formed": chunked(json if path.startswith("/api/") else form, 7),
            "over the limit": chunked(b"x" * (LIMIT + 1)),
        }
        for why, body in bodies.items():
            answer = post_chunked(server, path, body, media_of(path))
            assert_refused(answer, path, 411, "length_required")
            assert b"Content-Length" in answer.body, (path, why, answer)
        cut = post_chunked(server, path, b"40\r\nnot all of it", media_of(path), cut_short=True)
        assert_refused(cut, path, 411, "length_required")
    log = server.log.read_text()
    assert "Traceback" not in log
    assert " 500 " not in log


def test_a_chunked_sign_up_creates_no_account(
    app: Flask, live_server_factory: Callable[..., LiveServer]
) -> None:
    server = live_server_factory(workers=1, max_content_length=LIMIT)
    body = b'{"username": "carol", "password": "a long enough passphrase"}'
    answer = post_chunked(server, "/api/v1/users", chunked(body, 7), "application/json")
    assert_refused(answer, "/api/v1/users", 411, "length_required")
    assert count_users(app) == 0
