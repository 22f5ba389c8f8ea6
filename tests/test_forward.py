"""Test the forward-auth checks a reverse proxy asks: /auth/request (nginx), /auth/forward."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from helpers import GOOD_PASSWORD, SAME_ORIGIN, add_user, browser_of, count_rows, run_cli
from yupnope.models import LoginEvent

API = "/api/v1"

#: The rules of every test here: one public app, one for staff, one closed, the rest signed in.
RULES = {
    "default_policy": "deny",
    "rules": [
        {"domain": ["public.example.com"], "policy": "bypass"},
        {"domain": ["app.example.com"], "resources": ["^/admin(/|$)"], "policy": "deny"},
        {"domain": ["staff.example.com"], "subject": ["group:staff"], "policy": "signed_in"},
        {"domain": ["staff.example.com"], "policy": "deny"},
        {"domain": ["*.example.com"], "policy": "signed_in"},
    ],
}

PORTAL = {
    "cookie_domain": "example.com",
    "public_url": "https://login.example.com",
    "access": RULES,
}


@pytest.fixture
def portal(app_factory: Callable[..., Flask]) -> Flask:
    """Return an app with the rules above, and alice."""
    app = app_factory(**PORTAL)
    add_user(app, "alice")
    return app


def signed_in(app: Flask) -> FlaskClient:
    """Return a client holding alice's session cookie, as the app's browser would send it."""
    client = browser_of(app)
    answer = client.post(
        "/login", data={"username": "alice", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    assert answer.status_code == 303
    return client


def nginx(client: FlaskClient, url: str, **headers: str) -> Any:
    """Ask as nginx's auth_request does, about ``url``."""
    return client.get("/auth/request", headers={"X-Original-URL": url, **headers})


def forward(client: FlaskClient, url: str, method: str = "GET", **headers: str) -> Any:
    """Ask as Traefik's forwardAuth and Caddy's forward_auth do, about ``url``."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    sent = {
        "X-Forwarded-Method": method,
        "X-Forwarded-Proto": scheme,
        "X-Forwarded-Host": host,
        "X-Forwarded-Uri": "/" + path,
        **headers,
    }
    return client.get("/auth/forward", headers=sent)


def test_nginx_gets_401_then_the_identity(portal: Flask) -> None:
    anonymous = nginx(browser_of(portal), "https://app.example.com/notes?x=1")
    assert anonymous.status_code == 401
    assert anonymous.headers["Cache-Control"] == "no-store"
    assert "Location" not in anonymous.headers
    allowed = nginx(signed_in(portal), "https://app.example.com/notes?x=1")
    assert allowed.status_code == 200
    assert allowed.headers["Remote-User"] == "alice"
    assert allowed.headers["Remote-Groups"] == ""


def test_a_denied_path_is_403_for_everyone(portal: Flask) -> None:
    assert nginx(signed_in(portal), "https://app.example.com/admin/users").status_code == 403
    # Decoded once, as the app will read it: no way around the rule by escaping it.
    assert nginx(signed_in(portal), "https://app.example.com/%61dmin").status_code == 403
    assert nginx(browser_of(portal), "https://app.example.com/admin").status_code == 403


def test_a_browser_is_sent_to_the_portal_with_rd(portal: Flask) -> None:
    wanted = "https://app.example.com/notes?x=1&y=2"
    login = "https://login.example.com/login?rd=" + quote(wanted, safe="")
    answer = forward(browser_of(portal), wanted, Accept="text/html,application/xhtml+xml")
    assert (answer.status_code, answer.headers["Location"]) == (302, login)
    # nginx takes only a 401 for "sign in first" and cannot escape a URL into a query: its
    # error_page sends the browser to the Location of the 401.
    told = nginx(browser_of(portal), wanted, Accept="text/html")
    assert (told.status_code, told.headers["Location"]) == (401, login)
    # The portal keeps it, and sends the browser back there after the login.
    form = browser_of(portal).get(answer.headers["Location"], base_url="https://login.example.com")
    assert 'name="rd" value="https://app.example.com/notes?x=1&amp;y=2"' in form.get_data(
        as_text=True
    )


def test_a_program_gets_401_with_a_challenge(portal: Flask) -> None:
    answer = forward(browser_of(portal), "https://app.example.com/", Accept="application/json")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="yupnope"'
    wrong = forward(
        browser_of(portal), "https://app.example.com/", Authorization="Bearer not-a-token"
    )
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    # nginx's program keeps its 401: no login page to be sent to.
    with_token = nginx(browser_of(portal), "https://app.example.com/", Authorization="Bearer x")
    assert with_token.status_code == 401
    assert "Location" not in with_token.headers


def test_bypass_lets_anyone_in_with_empty_identity(portal: Flask) -> None:
    answer = forward(browser_of(portal), "https://public.example.com/")
    assert answer.status_code == 200
    # Sent empty, so a proxy copying them replaces any the client forged.
    assert answer.headers["Remote-User"] == ""
    assert answer.headers["Remote-Groups"] == ""


def test_unlisted_hosts_fall_to_the_default_deny(portal: Flask) -> None:
    assert forward(signed_in(portal), "https://other.test/").status_code == 403


def test_groups_open_what_they_name_at_the_next_check(portal: Flask, runner: Any) -> None:
    browser = signed_in(portal)
    refused = forward(browser, "https://staff.example.com/")
    assert refused.status_code == 403
    assert "alice" in refused.get_data(as_text=True)
    assert run_cli(runner, "groups", "add", "staff").exit_code == 0
    assert run_cli(runner, "users", "groups", "alice", "--add", "staff").exit_code == 0
    allowed = forward(browser, "https://staff.example.com/")
    assert allowed.status_code == 200
    assert allowed.headers["Remote-Groups"] == "staff"
    assert run_cli(runner, "users", "groups", "alice", "--remove", "staff").exit_code == 0
    assert forward(browser, "https://staff.example.com/").status_code == 403


def test_a_logout_holds_at_the_next_check(portal: Flask) -> None:
    browser = signed_in(portal)
    assert nginx(browser, "https://app.example.com/").status_code == 200
    assert browser.post("/logout", headers=SAME_ORIGIN).status_code == 303
    cookie = browser_of(portal)
    assert nginx(cookie, "https://app.example.com/").status_code == 401


def test_tokens_open_the_apps_for_scripts(portal: Flask) -> None:
    client = browser_of(portal)
    made = client.post(f"{API}/sessions", json={"username": "alice", "password": GOOD_PASSWORD})
    session = made.get_json()["token"]
    token = client.post(
        f"{API}/me/tokens",
        json={"name": "script"},
        headers={"Authorization": f"Bearer {session}"},
    ).get_json()["secret"]
    for secret in (session, token):
        answer = forward(
            browser_of(portal), "https://app.example.com/api", Authorization=f"Bearer {secret}"
        )
        assert (answer.status_code, answer.headers["Remote-User"]) == (200, "alice")


def test_the_check_is_answered_whatever_the_host_method_or_framing(portal: Flask) -> None:
    # A proxy asks with the app's Host, the request's own method and its Transfer-Encoding;
    # the portal's own refusals (other host, cross-site post, chunked body) are not for it.
    browser = signed_in(portal)
    answer = browser.post(
        "/auth/request",
        headers={
            "X-Original-URL": "https://app.example.com/upload",
            "X-Original-Method": "POST",
            "Host": "app.example.com",
            "Sec-Fetch-Site": "cross-site",
            "Transfer-Encoding": "chunked",
        },
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/auth/forward", {}),
        ("/auth/forward", {"X-Forwarded-Host": "app.example.com", "X-Forwarded-Uri": "admin"}),
        (
            "/auth/forward",
            {"X-Forwarded-Proto": "ftp", "X-Forwarded-Host": "a", "X-Forwarded-Uri": "/"},
        ),
        ("/auth/request", {"X-Original-URL": "http://[::1/"}),
        ("/auth/request", {"X-Original-URL": "app.example.com/x"}),
    ],
)
def test_a_check_without_the_original_request_is_400(
    portal: Flask, path: str, headers: dict[str, str]
) -> None:
    answer = browser_of(portal).get(path, headers=headers)
    assert answer.status_code == 400
    assert "X-Forwarded-Host" in answer.get_data(as_text=True)


def test_a_name_beyond_latin_1_reaches_the_app_as_utf_8(portal: Flask) -> None:
    add_user(portal, "ωμέγα")
    client = browser_of(portal)
    client.post(
        "/login", data={"username": "ωμέγα", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    answer = nginx(client, "https://app.example.com/")
    raw = answer.headers["Remote-User"].encode("latin-1")
    assert raw.decode("utf-8") == "ωμέγα"


def basic(name: str, password: str) -> dict[str, str]:
    """Return the Authorization header of HTTP Basic (RFC 7617) for ``name`` and ``password``."""
    pair = f"{name}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def test_basic_credentials_are_ignored_unless_turned_on(portal: Flask) -> None:
    answer = forward(
        browser_of(portal), "https://app.example.com/", **basic("alice", GOOD_PASSWORD)
    )
    assert answer.status_code == 401
    assert "Basic" not in answer.headers["WWW-Authenticate"]


def test_basic_credentials_open_the_apps_when_turned_on(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(**PORTAL, proxy_basic_auth=True)
    add_user(app, "alice")
    events = count_rows(app, LoginEvent)
    good = forward(browser_of(app), "https://app.example.com/", **basic("alice", GOOD_PASSWORD))
    assert (good.status_code, good.headers["Remote-User"]) == (200, "alice")
    # A success comes with every request: no event for it.
    assert count_rows(app, LoginEvent) == events
    for wrong in (basic("alice", "not the password"), basic("nobody", GOOD_PASSWORD)):
        refused = forward(browser_of(app), "https://app.example.com/", **wrong)
        assert refused.status_code == 401
        assert 'Basic realm="yupnope"' in refused.headers["WWW-Authenticate"]
    for malformed in ("Basic !!!", "Basic " + base64.b64encode(b"no colon").decode()):
        answer = forward(browser_of(app), "https://app.example.com/", Authorization=malformed)
        assert answer.status_code == 401


def test_one_budget_for_the_form_the_api_and_basic(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(**PORTAL, proxy_basic_auth=True, throttle_account_limit=3)
    add_user(app, "alice")
    browser = browser_of(app)
    wrong = {"username": "alice", "password": "not the password"}
    assert browser.post("/login", data=wrong, headers=SAME_ORIGIN).status_code == 303
    assert browser.post(f"{API}/sessions", json=wrong).status_code == 401
    url = "https://app.example.com/"
    assert forward(browser, url, **basic("alice", "not the password")).status_code == 401
    # The account's budget is spent, by all three together: even the right password waits.
    throttled = forward(browser, url, **basic("alice", GOOD_PASSWORD))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"].isdigit()
    # nginx takes nothing but 2xx, 401 and 403 from its check.
    assert nginx(browser, url, **basic("alice", GOOD_PASSWORD)).status_code == 401
    form = browser.post(
        "/login", data={"username": "alice", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    assert form.headers["Location"].startswith("/nope?wait=")


#: The rules the docs give for three apps, as deploy/forward-auth/ ships them.
DOC_RULES = Path(__file__).parent.parent / "deploy" / "forward-auth" / "yupnope.toml"

#: The status a non-browser gets from /auth/forward for each decision `rules explain` prints.
STATUS_OF = {"allow": 200, "sign_in": 401, "deny": 403}


def test_rules_explain_says_what_the_check_does_for_every_rule(
    app_factory: Callable[..., Flask], instance: Path, runner: Any
) -> None:
    (instance / "yupnope.toml").write_text(DOC_RULES.read_text())
    app = app_factory(**{k: v for k, v in PORTAL.items() if k != "access"})
    for name, group in (("alice", "staff"), ("bob", "contractors"), ("carol", None)):
        add_user(app, name)
        if group is not None:
            assert run_cli(runner, "groups", "add", group).exit_code == 0
            assert run_cli(runner, "users", "groups", name, "--add", group).exit_code == 0
    urls = [
        "https://status.example.com/",
        "https://app.example.com/public/notes",
        "https://app.example.com/notes",
        "https://wiki.example.com/page",
        "https://elsewhere.example.com/",
    ]
    decisions = set()
    for who in (None, "alice", "bob", "carol"):
        client = browser_of(app)
        if who is not None:
            form = {"username": who, "password": GOOD_PASSWORD}
            assert client.post("/login", data=form, headers=SAME_ORIGIN).status_code == 303
        for url in urls:
            printed = run_cli(runner, "rules", "explain", url, *(["--user", who] if who else []))
            decision = printed.stdout.splitlines()[-1].split()[1].rstrip(",")
            decisions.add(decision)
            answer = forward(client, url, Accept="application/json")
            assert answer.status_code == STATUS_OF[decision], (who, url, printed.stdout)
    # Every outcome came up, so the comparison covered each.
    assert decisions == set(STATUS_OF)
