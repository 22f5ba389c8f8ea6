"""Test the door: logins refused before Flask runs while every hashing slot and place is taken."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, request, request_started
from flask.testing import FlaskClient

from helpers import GOOD_PASSWORD, SAME_ORIGIN, add_user, login, slot_held_elsewhere
from yupnope import wiring
from yupnope.web.admission import Admission

CREDENTIALS = {"username": "alice", "password": GOOD_PASSWORD}


def door(app: Flask) -> Admission:
    """Return the app's Admission middleware, under whatever wraps it."""
    layer: Any = app.wsgi_app
    while not isinstance(layer, Admission):
        layer = layer.app
    return layer


def requests_seen(app: Flask) -> list[str]:
    """Return a list that grows by one for each request Flask dispatches from now on."""
    seen: list[str] = []

    def started(sender: Flask, **_: Any) -> None:
        seen.append(request.path)

    # Kept on the app, since blinker holds its receivers weakly.
    app.extensions["test_admission"] = started
    request_started.connect(started, app)
    return seen


@contextmanager
def gate_full(app: Flask) -> Iterator[None]:
    """Take the only hashing slot and leave no place in line, for the block."""
    gate = wiring.get(app).hasher.gate
    queue, gate.queue = gate.queue, 0
    try:
        with slot_held_elsewhere(app):
            yield
    finally:
        gate.queue = queue


def api_login(client: FlaskClient, headers: dict[str, str] | None = None) -> Any:
    """Ask the API for a session with alice's name and password."""
    return client.post("/api/v1/sessions", json=CREDENTIALS, headers=headers or {})


def test_the_door_guards_the_two_login_routes(app: Flask) -> None:
    assert door(app).routes() == {("POST", "/login"), ("POST", "/api/v1/sessions")}


def test_a_full_gate_refuses_logins_without_running_the_app(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(hash_concurrency=1)
    add_user(app, "alice")
    seen = requests_seen(app)
    browser, script = app.test_client(), app.test_client()
    with gate_full(app):
        pages = [login(browser, "alice") for _ in range(5)]
        apis = [api_login(script) for _ in range(5)]
    # The app ran once for each kind of answer, to render it, and never again.
    assert len(seen) == 2
    assert {page.status_code for page in pages + apis} == {503}
    assert {page.headers["Retry-After"] for page in pages + apis} == {"1"}
    assert {page.mimetype for page in pages} == {"text/html"}
    assert {api.mimetype for api in apis} == {"application/problem+json"}
    assert {api.get_json()["code"] for api in apis} == {"busy"}
    assert "busy checking other logins" in pages[-1].get_data(as_text=True)
    for answer in pages + apis:
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert answer.headers["Cache-Control"] == "no-store"
    # Once a slot is free, the same login goes through the app again.
    assert login(browser, "alice").headers["Location"] == "/yup"
    assert len(seen) == 3


def test_the_door_neither_reads_nor_ends_the_browsers_session(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(hash_concurrency=1)
    add_user(app, "alice")
    browser = app.test_client()
    assert login(browser, "alice").headers["Location"] == "/yup"
    with gate_full(app):
        busy = login(browser, "alice")
        # Pages need no hash: a signed-in user's are served while logins are refused.
        page = browser.get("/yup")
    assert busy.status_code == 503
    assert "Set-Cookie" not in busy.headers
    assert page.status_code == 200
    assert "alice" in page.get_data(as_text=True)


def test_other_posts_are_not_refused_at_the_door(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.05)
    seen = requests_seen(app)
    with gate_full(app):
        answer = app.test_client().post(
            "/signup", data={"username": "carol", "password": "x"}, headers=SAME_ORIGIN
        )
    # A password the rules refuse is told so, as without a flood: the app read the form.
    assert answer.status_code == 422
    assert len(seen) == 1


def test_https_and_listed_origins_get_answers_of_their_own(
    app_factory: Callable[..., Flask],
) -> None:
    listed = "https://app.example"
    app = app_factory(hash_concurrency=1, trusted_proxies="1", cors_origins=listed)
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"}
    with gate_full(app):
        plain = api_login(client)
        secure = api_login(client, https)
        cors = api_login(client, {"Origin": listed})
        other = api_login(client, {"Origin": "https://elsewhere.example"})
        again = api_login(client, {"Origin": listed})
    assert {a.status_code for a in (plain, secure, cors, other, again)} == {503}
    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert cors.headers["Access-Control-Allow-Origin"] == listed
    assert again.headers["Access-Control-Allow-Origin"] == listed
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]
