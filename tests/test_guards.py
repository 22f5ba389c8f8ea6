"""Test the cross-origin guard on unsafe requests and the safe_next_url check of redirects."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from helpers import GOOD_PASSWORD, add_user, count_users, login
from yupnope.web.guards import safe_next_url

REFUSED_MESSAGE = "sent from another site"


def post_signup(client: FlaskClient, headers: dict[str, str]) -> Any:
    """Post a valid sign-up form for carol with the given request headers."""
    return client.post(
        "/signup", data={"username": "carol", "password": GOOD_PASSWORD}, headers=headers
    )


# The cross-origin guard

REFUSED_HEADERS = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    # The browser's Sec-Fetch-Site decides, whatever the Origin says.
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    {"Origin": "https://evil.com"},
    {"Origin": "http://localhost.evil.com"},
    {"Origin": "http://localhost:8000"},
    {"Origin": "null"},
    {"Origin": "http://[::1"},
]

ALLOWED_HEADERS = [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    {"Origin": "http://localhost"},
    {},
]


@pytest.mark.parametrize("headers", REFUSED_HEADERS, ids=repr)
def test_cross_origin_signup_is_refused_and_creates_nothing(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = post_signup(client, headers)
    assert response.status_code == 403
    assert REFUSED_MESSAGE in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert count_users(app) == 0


@pytest.mark.parametrize("headers", ALLOWED_HEADERS, ids=repr)
def test_same_origin_signup_is_allowed(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = post_signup(client, headers)
    assert response.status_code == 303
    assert response.headers["Location"] == "/yup"
    assert count_users(app) == 1


@pytest.mark.parametrize("headers", REFUSED_HEADERS[:2] + REFUSED_HEADERS[3:4], ids=repr)
def test_cross_origin_login_is_refused(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    add_user(app, "alice")
    response = client.post(
        "/login", data={"username": "alice", "password": GOOD_PASSWORD}, headers=headers
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert client.get("/yup").status_code == 302


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/logout", {}),
        ("/account/logout-everywhere", {}),
        ("/account/delete", {"password": GOOD_PASSWORD}),
        ("/account/password", {"current_password": GOOD_PASSWORD, "new_password": "x" * 20}),
    ],
)
def test_cross_origin_account_actions_change_nothing(
    app: Flask, client: FlaskClient, path: str, data: dict[str, str]
) -> None:
    add_user(app, "alice")
    login(client, "alice")
    response = client.post(path, data=data, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert REFUSED_MESSAGE in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert client.get("/yup").status_code == 200
    assert login(app.test_client(), "alice", GOOD_PASSWORD).headers["Location"] == "/yup"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_unsafe_methods_are_guarded_too(client: FlaskClient, method: str) -> None:
    response = client.open("/account", method=method, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/nope", "/yup", "/account"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_never_refused(client: FlaskClient, path: str, method: str) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.com"}
    response = client.open(path, method=method, headers=headers)
    assert response.status_code in (200, 302)


def test_a_cross_site_link_still_shows_a_logged_in_page(app: Flask, client: FlaskClient) -> None:
    add_user(app, "alice")
    login(client, "alice")
    response = client.get("/yup", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert "alice" in response.get_data(as_text=True)


# safe_next_url, after Django's url_has_allowed_host_and_scheme tests

ACCEPTED = [
    "/",
    "/account",
    "/yup?x=1",
    "/a/b#frag",
    "/%41",
    "/account?next=//evil.com",
    "/url%20with%20spaces/",
    "/path/http:2222222222",
    "/ünïcode",
    "/a/%2fb",
    "/@evil.com",
    "/" + "a" * 2047,
]

REFUSED = [
    None,
    "",
    "evil.com",
    "account",
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "//evil.com/path",
    "//evil.com@localhost",
    "/\\evil.com",
    "/\\/evil.com",
    "\\\\evil.com",
    "\\\\\\evil.com",
    "\\/evil.com",
    "https://evil.com",
    "HTTPS://evil.com",
    "http://localhost/account",
    "http:/evil.com",
    "http:evil.com",
    "https:evil.com",
    "http:\\\\evil.com",
    "http:/\\evil.com",
    "http:\\/evil.com",
    "ftp://evil.com",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/%2fevil.com",
    "/%2Fevil.com",
    "/%5cevil.com",
    "/%5Cevil.com",
    "/%2F%2Fevil.com",
    "\t//evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/account\r\nSet-Cookie: x=1",
    "/\x00/evil.com",
    "/\x08/evil.com",
    "/\x7f/evil.com",
    " //evil.com",
    " /account",
    "\n/account",
    "%2F%2Fevil.com",
    "/" + "a" * 3000,
    "/" + "a" * 2048,
]


@pytest.mark.parametrize("target", ACCEPTED)
def test_safe_next_url_accepts_paths_on_this_site(target: str) -> None:
    assert safe_next_url(target, "/default") == target


@pytest.mark.parametrize("target", REFUSED, ids=repr)
def test_safe_next_url_refuses_everything_else(target: str | None) -> None:
    assert safe_next_url(target, "/default") == "/default"


def test_the_corpus_is_large() -> None:
    assert len(ACCEPTED) + len(REFUSED) >= 30


def test_every_refused_next_lands_on_yup_after_a_real_login(app: Flask) -> None:
    """The whole corpus through POST /login: each unsafe ``next`` is replaced by /yup."""
    add_user(app, "alice")
    client = app.test_client()
    for target in REFUSED:
        if target is None:
            continue
        response = client.post(
            "/login",
            data={"username": "alice", "password": GOOD_PASSWORD, "next": target},
            headers={"Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 303, target
        assert response.headers["Location"] == "/yup", target
