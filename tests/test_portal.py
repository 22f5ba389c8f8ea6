"""Test the portal for the apps behind a proxy: the cookie domain, and ``rd`` there and back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from helpers import COOKIE, GOOD_PASSWORD, SAME_ORIGIN, add_user, browser_of, login
from yupnope import config

PORTAL = {"cookie_domain": "example.com", "public_url": "https://login.example.com"}

#: ``rd`` values a login must never follow, each a trick some browser or parser falls for.
FOREIGN = [
    "https://evil.test/",
    "https://evilexample.com/",
    "https://example.com.evil.test/",
    "https://app.example.com@evil.test/",
    "https://evil.test\\.example.com/",
    "https://evil.test%2f.example.com/",
    "https://evil.test%2Eexample.com/",
    "//app.example.com/",
    "/yup",
    "javascript://app.example.com/%0aalert(1)",
    "ftp://app.example.com/",
    " https://app.example.com/",
    "https://app.example.com/\t",
    "https://app.example.com/\r\nSet-Cookie: x=1",
    "https://[::1]/",
    "https://app.example.com:99999/",
    "https://" + "a" * 2050 + ".example.com/",
]


@pytest.fixture
def portal(app_factory: Callable[..., Flask]) -> Flask:
    """Return an app that serves login.example.com with the cookie on example.com."""
    app = app_factory(**PORTAL)
    add_user(app, "alice")
    return app


def test_the_session_cookie_covers_the_cookie_domain(portal: Flask) -> None:
    browser = browser_of(portal)
    answer = login(browser, "alice")
    setting = answer.headers.getlist("Set-Cookie")
    (cookie,) = [c for c in setting if c.startswith(COOKIE) and "1970" not in c]
    assert "Domain=example.com" in cookie
    # The device cookie stays with the portal's host, where logins are.
    device = [c for c in setting if not c.startswith(COOKIE)]
    assert device and all("Domain" not in c for c in device)
    out = browser.post("/logout", headers=SAME_ORIGIN)
    gone = [c for c in out.headers.getlist("Set-Cookie") if c.startswith(COOKIE)]
    assert any("Domain=example.com" in c and "Expires=Thu, 01 Jan 1970" in c for c in gone)


def test_without_a_cookie_domain_the_cookie_is_the_hosts(app: Flask) -> None:
    add_user(app, "alice")
    answer = login(app.test_client(), "alice")
    assert all("Domain" not in c for c in answer.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(
    ("domain", "public", "fragment"),
    [
        ("1.2.3.4", "", "takes a domain like example.com"),
        ("localhost", "", "takes a domain like example.com"),
        ("-bad.example.com", "", "takes a domain like example.com"),
        ("exa mple.com", "", "takes a domain like example.com"),
        ("example.com", "https://login.other.test", "must cover YUPNOPE_PUBLIC_URL.s host"),
    ],
)
def test_a_cookie_domain_that_cannot_work_is_refused(
    domain: str, public: str, fragment: str
) -> None:
    with pytest.raises(config.ConfigError, match=fragment):
        config.load({}, {"cookie_domain": domain, "public_url": public})


def test_a_cookie_domain_is_written_as_browsers_compare_it() -> None:
    settings = config.load({}, {"cookie_domain": ".Bücher.Example"})
    assert settings.cookie_domain == "xn--bcher-kva.example"


def test_login_returns_to_an_app_under_the_cookie_domain(portal: Flask) -> None:
    browser = browser_of(portal)
    wanted = "https://app.example.com/admin/?tab=2#top"
    form = browser.get("/login", query_string={"rd": wanted}).get_data(as_text=True)
    assert 'name="rd" value="https://app.example.com/admin/?tab=2#top"' in form
    answer = browser.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "rd": wanted},
        headers=SAME_ORIGIN,
    )
    assert (answer.status_code, answer.headers["Location"]) == (303, wanted)


@pytest.mark.parametrize(
    ("given", "followed"),
    [
        ("https://example.com/", "https://example.com/"),
        ("https://APP.Example.COM", "https://app.example.com/"),
        ("http://app.example.com:8443/x", "http://app.example.com:8443/x"),
        ("https://bücher.example.com/", "https://xn--bcher-kva.example.com/"),
    ],
)
def test_rd_is_followed_as_written_plainly(portal: Flask, given: str, followed: str) -> None:
    answer = browser_of(portal).post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "rd": given},
        headers=SAME_ORIGIN,
    )
    assert answer.headers["Location"] == followed


@pytest.mark.parametrize("foreign", FOREIGN)
def test_rd_elsewhere_is_never_followed(portal: Flask, foreign: str) -> None:
    browser = browser_of(portal)
    form = browser.get("/login", query_string={"rd": foreign}).get_data(as_text=True)
    assert 'name="rd"' not in form
    answer = browser.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "rd": foreign},
        headers=SAME_ORIGIN,
    )
    assert answer.headers["Location"] == "/yup"


def test_rd_is_never_followed_without_a_cookie_domain(app: Flask) -> None:
    add_user(app, "alice")
    answer = app.test_client().post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "rd": "https://app.example.com/"},
        headers=SAME_ORIGIN,
    )
    assert answer.headers["Location"] == "/yup"


def test_a_failed_login_keeps_rd_on_the_way_back(portal: Flask) -> None:
    browser = browser_of(portal)
    wanted = "https://app.example.com/x"
    answer = browser.post(
        "/login",
        data={"username": "alice", "password": "not the password", "rd": wanted},
        headers=SAME_ORIGIN,
    )
    assert answer.headers["Location"] == "/nope?rd=https://app.example.com/x"
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'href="/?rd=https://app.example.com/x"' in page
    elsewhere = browser.get("/nope", query_string={"rd": "https://evil.test/"})
    assert "evil" not in elsewhere.get_data(as_text=True)


def test_logout_asks_then_returns_to_rd(portal: Flask) -> None:
    browser = browser_of(portal)
    assert login(browser, "alice").status_code == 303
    wanted = "https://app.example.com/"
    page = browser.get("/logout", query_string={"rd": wanted}).get_data(as_text=True)
    assert 'name="rd" value="https://app.example.com/"' in page
    assert browser.get("/yup").status_code == 200
    out = browser.post("/logout", data={"rd": wanted}, headers=SAME_ORIGIN)
    assert (out.status_code, out.headers["Location"]) == (303, wanted)
    assert browser.get("/yup").status_code == 302
    foreign = browser.post("/logout", data={"rd": "https://evil.test/"}, headers=SAME_ORIGIN)
    assert foreign.headers["Location"] == "/"


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "same-site"}, {"Origin": "https://app.example.com"}],
    ids=["fetch metadata", "origin"],
)
def test_forms_from_the_apps_hosts_are_still_refused(
    portal: Flask, headers: dict[str, str]
) -> None:
    # The cookie reaches the apps' hosts; their pages still may not post the portal's forms.
    browser = browser_of(portal)
    assert login(browser, "alice").status_code == 303
    answer = browser.post("/logout", headers=headers)
    assert answer.status_code == 403
    assert browser.get("/yup").status_code == 200


def test_a_cookie_from_before_the_cookie_domain_is_removed_at_login(portal: Flask) -> None:
    answer = login(browser_of(portal), "alice")
    cookies = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith(COOKIE)]
    # The new session's cookie for the domain, and the removal of the host's own old one.
    assert len(cookies) == 2
    assert any("Domain=example.com" in c and "1970" not in c for c in cookies)
    assert any("Domain" not in c and "Expires=Thu, 01 Jan 1970" in c for c in cookies)
