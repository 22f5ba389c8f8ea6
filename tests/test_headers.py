"""Test the security headers on every kind of answer, and that the templates let the CSP hold."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import yupnope
from helpers import SAME_ORIGIN, add_user, login

TEMPLATES = Path(yupnope.__file__).parent / "templates"


def fetch(app: Flask, what: str, base_url: str = "http://localhost") -> Any:
    """Return the response to one named request, made by a fresh (or logged-in) client."""
    browser = app.test_client()
    if what in ("/yup logged in", "/account"):
        assert login(browser, "alice").headers["Location"] == "/yup"
    requests: dict[str, Callable[[FlaskClient], Any]] = {
        "/": lambda c: c.get("/", base_url=base_url),
        "/login": lambda c: c.get("/login", base_url=base_url),
        "/yup logged in": lambda c: c.get("/yup", base_url=base_url),
        "/yup anonymous": lambda c: c.get("/yup", base_url=base_url),
        "/nope": lambda c: c.get("/nope?wait=3", base_url=base_url),
        "/signup": lambda c: c.get("/signup", base_url=base_url),
        "/account": lambda c: c.get("/account", base_url=base_url),
        "POST /login": lambda c: c.post(
            "/login",
            data={"username": "alice", "password": "not the password"},
            headers=SAME_ORIGIN,
            base_url=base_url,
        ),
        "404": lambda c: c.get("/no/such/page", base_url=base_url),
        "405": lambda c: c.get("/account/logout-everywhere", base_url=base_url),
        "413": lambda c: c.post(
            "/login",
            data={"username": "alice", "password": "x" * 100_000},
            headers=SAME_ORIGIN,
            base_url=base_url,
        ),
        "403": lambda c: c.post(
            "/login", data={}, headers={"Sec-Fetch-Site": "cross-site"}, base_url=base_url
        ),
        "/healthz": lambda c: c.get("/healthz", base_url=base_url),
        "/static/style.css": lambda c: c.get("/static/style.css", base_url=base_url),
        "/static/yup.svg": lambda c: c.get("/static/yup.svg", base_url=base_url),
    }
    response = requests[what](browser)
    response.close()
    return response


STATUS = {
    "/": 200,
    "/login": 200,
    "/yup logged in": 200,
    "/yup anonymous": 302,
    "/nope": 200,
    "/signup": 200,
    "/account": 200,
    "POST /login": 303,
    "404": 404,
    "405": 405,
    "413": 413,
    "403": 403,
    "/healthz": 200,
    "/static/style.css": 200,
    "/static/yup.svg": 200,
}
STATIC = {"/static/style.css", "/static/yup.svg"}


@pytest.fixture
def site(app: Flask) -> Flask:
    """Return the app with the user alice in it."""
    add_user(app, "alice")
    return app


def directives(policy: str) -> dict[str, list[str]]:
    """Split a Content-Security-Policy into directive name -> its sources."""
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in found, f"{name} twice"
        found[name] = sources
    return found


@pytest.mark.parametrize("what", list(STATUS))
def test_every_answer_carries_the_security_headers(site: Flask, what: str) -> None:
    response = fetch(site, what)
    assert response.status_code == STATUS[what]
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for name in ("script-src", "style-src"):
        assert policy[name] == ["'self'"]
    everything = response.headers["Content-Security-Policy"]
    for loophole in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:"):
        assert loophole not in everything
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("what", list(STATUS))
def test_each_security_header_is_sent_once(site: Flask, what: str) -> None:
    response = fetch(site, what)
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"):
        assert len(response.headers.getlist(name)) == 1, name


def test_forms_may_lead_back_to_the_apps_under_the_cookie_domain(
    app: Flask, app_factory: Callable[..., Flask]
) -> None:
    # A login or logout returning to an app (rd) redirects its form's POST there, and
    # Chromium holds that redirect to form-action (tests/test_forward_proxies.py, in Chromium).
    alone = directives(app.test_client().get("/login").headers["Content-Security-Policy"])
    assert alone["form-action"] == ["'self'"]
    portal = app_factory(cookie_domain="example.com", public_url="https://login.example.com")
    answer = portal.test_client().get("/login", base_url="https://login.example.com")
    assert directives(answer.headers["Content-Security-Policy"])["form-action"] == [
        "'self'",
        "https://example.com:*",
        "https://*.example.com:*",
        "http://example.com:*",
        "http://*.example.com:*",
    ]


def test_a_header_an_answer_brings_itself_is_kept(app: Flask) -> None:
    own = "default-src 'self'"
    app.add_url_rule("/own", "own", lambda: ("own", 200, {"Content-Security-Policy": own}))
    response = app.test_client().get("/own")
    assert response.headers.getlist("Content-Security-Policy") == [own]
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("what", list(STATUS))
def test_pages_and_redirects_are_never_stored_but_static_files_may_be(
    site: Flask, what: str
) -> None:
    response = fetch(site, what)
    cache = {part.strip() for part in response.headers.get("Cache-Control", "").split(",")}
    if what in STATIC:
        assert "no-store" not in cache
    else:
        assert "no-store" in cache


def test_a_static_file_that_has_not_changed_stays_cacheable(client: FlaskClient) -> None:
    first = client.get("/static/style.css")
    first.close()
    again = client.get("/static/style.css", headers={"If-None-Match": first.headers["ETag"]})
    again.close()
    assert again.status_code == 304
    # A 304's headers replace the cached copy's (RFC 9111 4.3.4): no-store here would drop it.
    assert "no-store" not in again.headers.get("Cache-Control", "")


@pytest.mark.parametrize("what", ["/", "/yup logged in", "POST /login", "404", "/static/yup.svg"])
def test_hsts_is_sent_over_https_only(site: Flask, what: str) -> None:
    secure = fetch(site, what, base_url="https://localhost")
    assert secure.status_code == STATUS[what]
    hsts = secure.headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=")
    assert int(hsts.removeprefix("max-age=").split(";")[0]) >= 365 * 86400
    assert "Strict-Transport-Security" not in fetch(site, what).headers


# Nothing inline, so the policy needs no 'unsafe-inline'


class InlineFinder(HTMLParser):
    """Collect whatever a CSP without 'unsafe-inline' would block: inline script and style."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in names.items():
            if name == "style" or name.startswith("on"):
                self.found.append(f'{name}="{value}" on <{tag}>')
            if value.strip().lower().startswith("javascript:"):
                self.found.append(f'{name}="{value}" on <{tag}>')


def inline_parts(html: str) -> list[str]:
    """Return every inline script and style in ``html``, a line each."""
    finder = InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def test_the_finder_sees_inline_script_and_style() -> None:
    assert len(inline_parts('<p style="color: red" onclick="go()">x</p>')) == 2
    assert inline_parts("<script>alert(1)</script><style>p {}</style>") == [
        "<script> without src",
        "<style>",
    ]
    assert inline_parts('<a href="JavaScript:go()">x</a>') != []
    assert inline_parts('<script src="/static/app.js"></script><p class="x">ok</p>') == []


def test_templates_hold_no_inline_script_or_style() -> None:
    templates = sorted(TEMPLATES.glob("*.html"))
    assert len(templates) >= 7
    for template in templates:
        assert inline_parts(template.read_text(encoding="utf-8")) == [], template.name


@pytest.mark.parametrize("what", [w for w in STATUS if w not in STATIC and w != "/healthz"])
def test_rendered_pages_hold_no_inline_script_or_style(site: Flask, what: str) -> None:
    response = fetch(site, what)
    if response.mimetype == "text/html":
        assert inline_parts(response.get_data(as_text=True)) == []
