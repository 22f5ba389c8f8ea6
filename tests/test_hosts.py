"""Test that no answer carries the client's Host, and that a public URL refuses other hosts.

The outside review sent ``//`` paths with a forged Host and got it back in a 308's absolute
Location, from Werkzeug's URL map.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from helpers import SAME_ORIGIN, LiveServer, send_raw

PUBLIC = "https://login.example.com"

FORGED = {"Host": "evil.example"}


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("GET", "/static//style.css", "/static/style.css"),
        ("GET", "/api//v1/me?x=1", "/api/v1/me?x=1"),
        ("POST", "/api/v1//sessions", "/api/v1/sessions"),
    ],
)
def test_slash_redirects_are_relative_whatever_the_host(
    client: FlaskClient, method: str, path: str, target: str
) -> None:
    response = client.open(path, method=method, headers=FORGED | SAME_ORIGIN)
    assert response.status_code == 308
    assert response.headers["Location"] == target


def test_with_a_public_url_slash_redirects_are_built_on_it(
    app_factory: Callable[..., Flask],
) -> None:
    client = app_factory(public_url="HTTPS://Login.Example.com:443").test_client()
    response = client.get("/api//v1/me?x=1", headers={"Host": "login.example.com"})
    assert response.status_code == 308
    assert response.headers["Location"] == f"{PUBLIC}/api/v1/me?x=1"


def test_with_a_public_url_other_hosts_are_refused(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(public_url=PUBLIC).test_client()
    for host in ("evil.example", "127.0.0.1:8000", "login.example.com.evil.example", "a b"):
        page = client.get("/static//style.css", headers={"Host": host})
        assert page.status_code == 400, host
        assert page.mimetype == "text/html"
        assert "answers for login.example.com only" in page.text
        assert "evil" not in page.text
        api = client.post("/api/v1/sessions", json={}, headers={"Host": host} | SAME_ORIGIN)
        assert api.status_code == 400, host
        assert api.mimetype == "application/problem+json"
        assert api.json is not None and api.json["code"] == "bad_request"
    # The public host is answered, on whatever port a proxy passes on.
    for host in ("login.example.com", "LOGIN.example.com:8443"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host


def test_with_a_public_url_the_health_check_answers_any_host(
    app_factory: Callable[..., Flask],
) -> None:
    """Answer /healthz for a local monitor that asks by address: it says only ok or not."""
    client = app_factory(public_url=PUBLIC).test_client()
    for path in ("/healthz", "/healthz/live", "/healthz/ready"):
        assert client.get(path, headers={"Host": "127.0.0.1:8001"}).status_code == 200
    assert client.get("/login", headers={"Host": "127.0.0.1:8001"}).status_code == 400


@pytest.mark.live
def test_a_live_server_never_echoes_a_forged_host(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(workers=1)
    request = b"GET /static//style.css HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    response, body = send_raw(server, request)
    assert response.status == 308
    assert response.getheader("Location") == "/static/style.css"
    assert b"evil" not in body
