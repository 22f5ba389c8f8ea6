"""Test TRUSTED_PROXIES: whose X-Forwarded-For and X-Forwarded-Proto are believed, and whose not.

What is checked is what the address moves: the throttle's address counters and the event log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from helpers import GOOD_PASSWORD, WRONG, add_user
from yupnope import wiring
from yupnope.models import ThrottleCounter
from yupnope.throttle.policy import ADDRESS

PROXY = "10.1.2.3"


def post_login(
    browser: FlaskClient,
    username: str,
    password: str = WRONG,
    forwarded_for: str | None = None,
    remote: str = "127.0.0.1",
    proto: str | None = None,
) -> Any:
    """Post the login form from ``remote``, with the forwarded headers given."""
    headers = {"Sec-Fetch-Site": "same-origin"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    return browser.post(
        "/login",
        data={"username": username, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": remote},
    )


def throttled(response: Any) -> bool:
    """Return whether a login answer is the throttle's (and not a plain failure)."""
    assert response.status_code == 303
    location: str = response.headers["Location"]
    assert location == "/nope" or location.startswith("/nope?wait=")
    return location.startswith("/nope?wait=")


def logged_addresses(app: Flask) -> list[tuple[str, str | None]]:
    """Return every event as (kind, client address), oldest first."""
    with app.app_context():
        return [(e.kind, e.client_address) for e in wiring.store().events.since()]


def address_counts(app: Flask) -> dict[str, int]:
    """Return the throttle's per-address counts."""
    with app.app_context():
        rows = wiring.orm_session().scalars(
            select(ThrottleCounter).where(ThrottleCounter.scope == ADDRESS)
        )
        return {row.key: row.count for row in rows}


def session_cookie(response: Any) -> str:
    """Return the Set-Cookie line of the session cookie."""
    lines = [
        line
        for line in response.headers.getlist("Set-Cookie")
        if line.startswith("yupnope_session=")
    ]
    assert len(lines) == 1, response.headers
    return str(lines[0])


def is_secure(cookie_line: str) -> bool:
    """Return whether a Set-Cookie line marks the cookie Secure."""
    return "secure" in {part.strip().lower() for part in cookie_line.split(";")}


# No trusted proxy


def test_without_trusted_proxies_a_spoofed_header_moves_nothing(
    app_factory: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(throttle_address_limit=3)
    assert wiring.get(app).settings.trusted_proxies == ""
    browser = app.test_client()
    caplog.set_level(logging.WARNING, logger="yupnope.web.proxies")
    assert not throttled(post_login(browser, "user0"))
    assert caplog.records == []

    outcomes = [
        throttled(post_login(browser, f"user{i}", forwarded_for=f"203.0.113.{i}"))
        for i in range(1, 5)
    ]
    assert outcomes == [False, False, True, True]
    assert address_counts(app) == {"127.0.0.1": 3}
    assert {address for _, address in logged_addresses(app)} == {"127.0.0.1"}

    warnings = [r for r in caplog.records if r.name == "yupnope.web.proxies"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "YUPNOPE_TRUSTED_PROXIES" in warnings[0].getMessage()


def test_without_trusted_proxies_x_forwarded_proto_makes_nothing_secure(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory()
    add_user(app, "alice")
    answer = post_login(app.test_client(), "alice", GOOD_PASSWORD, "203.0.113.1", proto="https")
    assert answer.headers["Location"] == "/yup"
    assert not is_secure(session_cookie(answer))
    assert "Strict-Transport-Security" not in answer.headers


# A count of proxies


def test_with_one_proxy_the_last_entry_is_the_client(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(trusted_proxies="1", throttle_address_limit=2)
    browser = app.test_client()
    # The client may write anything on the left; the proxy appends what it saw.
    outcomes = [
        throttled(post_login(browser, "user0", forwarded_for="203.0.113.5")),
        throttled(post_login(browser, "user1", forwarded_for="198.51.100.9, 203.0.113.5")),
        throttled(post_login(browser, "user2", forwarded_for="198.51.100.10, 203.0.113.5")),
        throttled(post_login(browser, "user3", forwarded_for="203.0.113.6")),
    ]
    assert outcomes == [False, False, True, False]
    assert address_counts(app) == {"203.0.113.5": 2, "203.0.113.6": 1}
    assert logged_addresses(app) == [
        ("login_failed", "203.0.113.5"),
        ("login_failed", "203.0.113.5"),
        ("login_throttled", "203.0.113.5"),
        ("login_failed", "203.0.113.6"),
    ]


def test_with_one_proxy_its_https_makes_the_cookie_secure(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(trusted_proxies="1")
    assert wiring.get(app).settings.cookie_secure == "auto"
    add_user(app, "alice")
    secure = post_login(app.test_client(), "alice", GOOD_PASSWORD, "203.0.113.1", proto="https")
    assert secure.headers["Location"] == "/yup"
    assert is_secure(session_cookie(secure))
    plain = post_login(app.test_client(), "alice", GOOD_PASSWORD, "203.0.113.1", proto="http")
    assert not is_secure(session_cookie(plain))


# CIDRs of proxies


@pytest.mark.parametrize(
    ("remote", "forwarded_for", "client"),
    [
        pytest.param(PROXY, "203.0.113.7", "203.0.113.7", id="one hop"),
        pytest.param(
            PROXY, "198.51.100.9, 203.0.113.7, 10.9.9.9", "203.0.113.7", id="rightmost untrusted"
        ),
        pytest.param(PROXY, "203.0.113.7,10.9.9.9 , 10.8.8.8", "203.0.113.7", id="spacing"),
        pytest.param("198.51.100.50", "203.0.113.7", "198.51.100.50", id="untrusted sender"),
        pytest.param(PROXY, None, PROXY, id="no header"),
        pytest.param(f"::ffff:{PROXY}", "203.0.113.7", "203.0.113.7", id="proxy on dual stack"),
        pytest.param(PROXY, "203.0.113.7, ::ffff:10.9.9.9", "203.0.113.7", id="mapped hop"),
        pytest.param(PROXY, "2001:db8::7, 10.9.9.9", "2001:db8::7", id="IPv6 client"),
        pytest.param("fd00::1", "203.0.113.7, fd00::2", "203.0.113.7", id="IPv6 proxies"),
        pytest.param("::ffff:192.0.2.9", "203.0.113.7", "203.0.113.7", id="mapped network"),
    ],
)
def test_with_proxy_networks_the_rightmost_untrusted_entry_is_the_client(
    app_factory: Callable[..., Flask], remote: str, forwarded_for: str | None, client: str
) -> None:
    app = app_factory(trusted_proxies="10.0.0.0/8, fd00::/8, ::ffff:192.0.2.0/120")
    answer = post_login(app.test_client(), "user0", forwarded_for=forwarded_for, remote=remote)
    assert not throttled(answer)
    assert logged_addresses(app) == [("login_failed", client)]


def test_with_proxy_networks_each_client_has_its_own_counter(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(trusted_proxies="10.0.0.0/8", throttle_address_limit=2)
    browser = app.test_client()
    via_proxy = [
        throttled(post_login(browser, f"user{i}", forwarded_for="203.0.113.7", remote=PROXY))
        for i in range(3)
    ]
    assert via_proxy == [False, False, True]
    assert not throttled(post_login(browser, "user3", forwarded_for="203.0.113.8", remote=PROXY))
    # A client that is not a proxy cannot borrow another address's budget.
    direct = post_login(browser, "user4", forwarded_for="203.0.113.9", remote="192.0.2.50")
    assert not throttled(direct)
    assert address_counts(app) == {"203.0.113.7": 2, "203.0.113.8": 1, "192.0.2.50": 1}


def test_with_proxy_networks_only_a_trusted_proxy_says_https(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(trusted_proxies="10.0.0.0/8")
    add_user(app, "alice")

    def cookie_from(remote: str, proto: str) -> str:
        answer = post_login(app.test_client(), "alice", GOOD_PASSWORD, "203.0.113.7", remote, proto)
        assert answer.headers["Location"] == "/yup"
        return session_cookie(answer)

    assert is_secure(cookie_from(PROXY, "https"))
    assert is_secure(cookie_from(PROXY, "http, https"))
    assert not is_secure(cookie_from(PROXY, "http"))
    assert not is_secure(cookie_from("192.0.2.50", "https"))
