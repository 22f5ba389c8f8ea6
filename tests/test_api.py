"""Test every route of the JSON API under /api/v1, happy and failing, through the test client."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from helpers import (
    COOKIE,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    SAME_ORIGIN,
    WRONG,
    HashCounter,
    add_user,
    device_cookie_from,
    login,
    operator_acts_during_hash_check,
    run_cli,
)
from yupnope import personal_tokens, wiring
from yupnope.config import ConfigError
from yupnope.security.tokens import DeviceCookies
from yupnope.web import guards

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

API = "/api/v1"
PROBLEM = "application/problem+json"
CHALLENGE = 'Bearer realm="yupnope"'
CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}
APP_ORIGIN = "https://app.example"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
USER_FIELDS = {"id", "username", "created_at", "last_login_at", "must_change_password"}
#: What GET /me says of the caller's own account: the same, and the groups it is in.
ME_FIELDS = USER_FIELDS | {"groups"}


# Helpers


def call(
    client: FlaskClient,
    method: str,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """Send one request under /api/v1 and check what every API answer carries.

    Every answer is kept out of caches, and every failure is problem+json whose status and
    ``type`` agree with its ``code``.
    """
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    response = client.open(API + path, method=method, headers=sent, **kwargs)
    assert response.headers.get("Cache-Control") == "no-store"
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM, response.get_data(as_text=True)
        body = response.get_json()
        assert body["status"] == response.status_code
        assert body["type"] == "urn:yupnope:problem:" + body["code"]
        assert body["detail"]
    return response


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert that ``response`` is the problem ``code`` with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code
    return body


def credentials(name: str, password: str = GOOD_PASSWORD) -> dict[str, str]:
    """Return a login or sign-up body."""
    return {"username": name, "password": password}


def api_login(client: FlaskClient, name: str, password: str = GOOD_PASSWORD) -> str:
    """Log in through the API and return the session's bearer token."""
    response = call(client, "POST", "/sessions", json=credentials(name, password))
    assert response.status_code == 201, response.get_data(as_text=True)
    token: str = response.get_json()["token"]
    return token


def device_of(client: FlaskClient, name: str, **extra: Any) -> str:
    """Log in through the API as ``name`` and return the answer's device value."""
    response = call(client, "POST", "/sessions", json={**credentials(name), **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    device: str = response.get_json()["device"]
    return device


def make_token(client: FlaskClient, session: str, name: str = "script", **extra: Any) -> Any:
    """Make a personal token with the API session ``session``; return the 201 body."""
    response = call(client, "POST", "/me/tokens", token=session, json={"name": name, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def me(client: FlaskClient, token: str | None = None, **headers: str) -> TestResponse:
    """Ask GET /me, with ``token`` as a bearer token or with the client's own cookie."""
    return call(client, "GET", "/me", token=token, headers=headers)


def refused(client: FlaskClient, token: str) -> None:
    """Assert that ``token`` opens nothing any more: 401 invalid_token."""
    response = me(client, token)
    problem(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == CHALLENGE + ', error="invalid_token"'


def browser(app: Flask, name: str) -> FlaskClient:
    """Return a new client logged in as ``name`` through the login form, like a browser."""
    client = app.test_client()
    assert login(client, name).status_code == 303
    return client


def browser_in(client: FlaskClient) -> bool:
    """Return whether the client's cookie still opens GET /me from a page of this site."""
    return me(client, **SAME_ORIGIN).status_code == 200


def listed(client: FlaskClient, kind: str, token: str | None, **headers: str) -> list[Any]:
    """Return the caller's ``kind`` (sessions or tokens) from GET /me/<kind>; no secrets."""
    response = call(client, "GET", f"/me/{kind}", token=token, headers=headers)
    assert response.status_code == 200
    assert personal_tokens.TOKEN_PREFIX.encode() not in response.data
    found: list[Any] = response.get_json()[kind]
    return found


def parse_time(value: str) -> datetime:
    """Return the aware time in an API timestamp."""
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment


def lifetime(described: dict[str, Any]) -> timedelta:
    """Return how long a described token lives from its making."""
    return parse_time(described["expires_at"]) - parse_time(described["created_at"])


@pytest.fixture
def token(app: Flask, client: FlaskClient) -> str:
    """Return an API session token of a new user alice."""
    add_user(app, "alice")
    return api_login(client, "alice")


# POST /sessions: log in


def test_login_answers_a_token_that_works_as_bearer(app: Flask, client: FlaskClient) -> None:
    add_user(app, "alice")
    response = call(client, "POST", "/sessions", json=credentials("ALICE"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at", "user", "device"}
    assert isinstance(body["device"], str)
    assert set(body["user"]) == USER_FIELDS
    assert parse_time(body["expires_at"]) > parse_time(body["user"]["last_login_at"])
    assert (body["user"]["username"], body["user"]["must_change_password"]) == ("alice", False)
    assert me(client, body["token"]).get_json() == {**body["user"], "groups": []}
    # The scheme is case-insensitive (RFC 9110 11.1).
    assert me(client, Authorization="bearer " + body["token"]).status_code == 200


def test_every_login_failure_is_one_401_at_one_hash(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, "alice")
    add_user(app, "carol")
    with app.app_context():
        operator = wiring.operator()
        operator.set_disabled(operator.find("carol"), True, guards.now())
    hashes = HashCounter(monkeypatch)
    bodies = []
    for attempt in (credentials("nobody"), credentials("alice", "wrong"), credentials("carol")):
        before = hashes.calls
        response = call(client, "POST", "/sessions", json=attempt)
        problem(response, 401, "bad_credentials")
        assert response.headers["WWW-Authenticate"] == CHALLENGE
        assert hashes.calls - before == 1
        bodies.append(response.data)
    assert bodies[0] == bodies[1] == bodies[2]
    before = hashes.calls
    api_login(client, "alice")
    assert hashes.calls - before == 1


def failed_once(app: Flask, name: str) -> FlaskClient:
    """Add ``name`` and fail one login of theirs; return the client that failed."""
    add_user(app, name)
    client = app.test_client()
    wrong = call(client, "POST", "/sessions", json=credentials(name, "wrong"))
    problem(wrong, 401, "bad_credentials")
    return client


def test_a_throttled_login_is_429_without_a_hash(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = failed_once(app_factory(throttle_free_failures=0), "alice")
    hashes = HashCounter(monkeypatch)
    response = call(client, "POST", "/sessions", json=credentials("alice"))
    body = problem(response, 429, "throttled")
    assert int(response.headers["Retry-After"]) > 0
    assert body["retry_after"] == int(response.headers["Retry-After"])
    assert "Try again" in body["detail"]
    assert hashes.calls == 0


def test_the_first_wait_is_the_base_delay_with_no_free_failures(
    app_factory: Callable[..., Flask],
) -> None:
    """THROTTLE_BASE_DELAY_SECONDS is "the first wait", whatever THROTTLE_FREE_FAILURES is."""
    for free in (1, 0):
        app = app_factory(throttle_free_failures=free, throttle_base_delay_seconds=60)
        name = f"user{free}"
        response = call(failed_once(app, name), "POST", "/sessions", json=credentials(name))
        assert response.status_code == 429
        assert 0 < int(response.headers["Retry-After"]) <= 60, f"free failures: {free}"


@pytest.fixture
def wary(app_factory: Callable[..., Flask]) -> Flask:
    """Return an app with alice, where one failure makes an account (or device) wait 10 min."""
    app = app_factory(throttle_free_failures=1, throttle_base_delay_seconds=600)
    add_user(app, "alice")
    return app


def test_a_device_lets_its_client_in_while_the_account_waits_and_has_its_own_budget(
    wary: Flask,
) -> None:
    client = wary.test_client()
    device = device_of(client, "alice")
    # A stranger's failure makes the account wait, even for the right password without a device.
    problem(
        call(client, "POST", "/sessions", json=credentials("alice", WRONG)), 401, "bad_credentials"
    )
    problem(call(client, "POST", "/sessions", json=credentials("alice")), 429, "throttled")
    newer = device_of(client, "alice", device=device)
    # Each login answers a new value; the earlier one still counts, each on its own budget.
    assert newer != device
    with_newer = {**credentials("alice", WRONG), "device": newer}
    problem(call(client, "POST", "/sessions", json=with_newer), 401, "bad_credentials")
    with_newer["password"] = GOOD_PASSWORD
    problem(call(client, "POST", "/sessions", json=with_newer), 429, "throttled")
    assert device_of(client, "alice", device=device)


@pytest.mark.parametrize(
    "kind", ["another account's", "signed elsewhere", "expired", "altered", "garbage", "empty"]
)
def test_a_device_not_valid_for_the_account_counts_as_none_and_is_no_error(
    wary: Flask, kind: str
) -> None:
    add_user(wary, "bob")
    client = wary.test_client()
    alices, bobs = device_of(client, "alice"), device_of(client, "bob")
    sent = {
        "another account's": bobs,
        "signed elsewhere": DeviceCookies("another secret", max_age=86400).sign("alice"),
        "expired": device_cookie_from(wary, "alice", days_ago=181),
        "altered": bobs.split(".", 1)[0] + "." + alices.split(".", 1)[1],
        "garbage": "not a device \u0000 \u2603",
        "empty": "",
    }[kind]

    def log_in(password: str) -> TestResponse:
        return call(
            client, "POST", "/sessions", json={**credentials("alice", password), "device": sent}
        )

    assert log_in(GOOD_PASSWORD).status_code == 201
    problem(log_in(WRONG), 401, "bad_credentials")
    # That failure went on the account, whose wait now holds for this value as for none.
    problem(log_in(GOOD_PASSWORD), 429, "throttled")
    problem(call(client, "POST", "/sessions", json=credentials("alice")), 429, "throttled")
    assert device_of(client, "alice", device=alices)


def test_a_session_token_is_no_personal_token(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session token is random base64url: one login in 64**4 draws one that starts "ynp_"."""
    add_user(app, "alice")
    drawn = secrets.token_urlsafe
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=None: "ynp_" + drawn(n)[4:])
    token = api_login(client, "alice")
    assert me(client, token).status_code == 200


# Which kind of credential counts where


def test_sessions_are_bound_to_their_kind(app: Flask, client: FlaskClient, token: str) -> None:
    as_cookie = app.test_client()
    as_cookie.set_cookie(COOKIE, token)
    problem(me(as_cookie, **SAME_ORIGIN), 401, "not_authenticated")
    assert as_cookie.get("/yup").status_code == 302
    cookie = browser(app, "alice").get_cookie(COOKIE)
    assert cookie is not None
    refused(client, cookie.value)


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6eA==", "Bearer", "Bearer   ", "", "Token abc", "Bearer a b"]
)
def test_a_malformed_authorization_is_401(app: Flask, token: str, header: str) -> None:
    logged_in = browser(app, "alice")
    response = me(logged_in, Authorization=header, **SAME_ORIGIN)
    problem(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith(CHALLENGE)
    # RFC 6750 3.1: no error code for a client that did not try a bearer token.
    if header.partition(" ")[0].lower() != "bearer":
        assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_get_me_answers_a_same_site_cookie_and_401_without_credentials(app: Flask) -> None:
    add_user(app, "alice")
    response = me(app.test_client(), **SAME_ORIGIN)
    problem(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    response = me(browser(app, "alice"), **SAME_ORIGIN)
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"
    assert set(response.get_json()) == ME_FIELDS
    assert response.get_json()["groups"] == []


# DELETE /sessions/current: log out


def test_logout_ends_the_bearer_session_only(app: Flask, client: FlaskClient, token: str) -> None:
    other = api_login(client, "alice")
    logged_in = browser(app, "alice")
    response = call(client, "DELETE", "/sessions/current", token=token)
    assert response.status_code == 204
    assert response.data == b""
    refused(client, token)
    problem(call(client, "DELETE", "/sessions/current", token=token), 401, "not_authenticated")
    assert me(client, other).status_code == 200
    assert browser_in(logged_in)


def test_logout_with_a_personal_token_revokes_that_token(client: FlaskClient, token: str) -> None:
    kept = make_token(client, token, "kept")
    gone = make_token(client, token, "gone")
    assert call(client, "DELETE", "/sessions/current", token=gone["secret"]).status_code == 204
    refused(client, gone["secret"])
    assert [t["id"] for t in listed(client, "tokens", token)] == [kept["id"]]
    assert me(client, kept["secret"]).status_code == 200


def test_logout_with_a_same_site_cookie_logs_the_browser_out(app: Flask, token: str) -> None:
    logged_in = browser(app, "alice")
    response = call(logged_in, "DELETE", "/sessions/current", headers=SAME_ORIGIN)
    assert response.status_code == 204
    assert logged_in.get_cookie(COOKIE) is None
    assert logged_in.get("/yup").status_code == 302
    assert me(app.test_client(), token).status_code == 200


# POST /users: sign up


def test_sign_up_creates_an_account_that_can_log_in(client: FlaskClient) -> None:
    response = call(client, "POST", "/users", json=credentials("Newcomer"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["username"] == "Newcomer"
    assert body["last_login_at"] is None
    assert body["must_change_password"] is False
    parse_time(body["created_at"])
    assert me(client, api_login(client, "newcomer")).get_json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("name", "password", "status", "code", "reason"),
    [
        ("ALICE", GOOD_PASSWORD, 409, "name_taken", None),
        (" ａｌｉｃｅ ", GOOD_PASSWORD, 409, "name_taken", None),
        ("al\u0131\u0307ce", GOOD_PASSWORD, 409, "name_taken", None),  # looks like alice
        ("\u0430lice", GOOD_PASSWORD, 422, "invalid_username", None),  # Cyrillic а, Latin lice
        ("bob\u2665", GOOD_PASSWORD, 422, "invalid_username", None),  # a symbol (RFC 8265)
        ("newcomer", "password", 422, "weak_password", "common"),
        ("newcomer", "NEWCOMER", 422, "weak_password", "same_as_name"),
        ("newcomer", "x" * 300, 422, "weak_password", "too_long"),
        ("two  spaces", GOOD_PASSWORD, 422, "invalid_username", None),
        ("zero\u200bwidth", GOOD_PASSWORD, 422, "invalid_username", None),
        ("tab\there", GOOD_PASSWORD, 422, "invalid_username", None),
        (" ", GOOD_PASSWORD, 422, "invalid_username", None),
    ],
)
def test_sign_up_refusals(
    app: Flask, client: FlaskClient, name: str, password: str, status: int, code: str, reason: Any
) -> None:
    add_user(app, "alice")
    response = call(client, "POST", "/users", json=credentials(name, password))
    assert problem(response, status, code).get("reason") == reason


def test_sign_up_of_a_look_alike_says_the_name_is_taken(app: Flask, client: FlaskClient) -> None:
    add_user(app, "inci")
    for look_alike in ("i\u0307nci", "İnci"):
        response = call(client, "POST", "/users", json=credentials(look_alike))
        assert (
            problem(response, 409, "name_taken")["detail"] == f"The name {look_alike!r} is taken."
        )
    response = call(client, "POST", "/users", json=credentials("\u0456nci"))
    detail = problem(response, 422, "invalid_username")["detail"]
    assert detail == "The name mixes letters of several scripts (Cyrillic and Latin)."


def test_sign_up_is_403_when_closed(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(signup_open=False).test_client()
    problem(call(client, "POST", "/users", json=credentials("newcomer")), 403, "signup_closed")


def test_sign_up_is_429_when_the_budget_is_spent(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(throttle_signup_limit=1).test_client()
    assert call(client, "POST", "/users", json=credentials("first")).status_code == 201
    response = call(client, "POST", "/users", json=credentials("second"))
    body = problem(response, 429, "throttled")
    assert body["retry_after"] == int(response.headers["Retry-After"]) > 0


# POST /me/password


def change(client: FlaskClient, token: str | None, current: str, new: str, **headers: str) -> Any:
    """Ask POST /me/password to replace ``current`` with ``new``."""
    body = {"current_password": current, "new_password": new}
    return call(client, "POST", "/me/password", token=token, json=body, headers=headers)


def test_password_change_ends_every_other_credential(
    app: Flask, client: FlaskClient, token: str
) -> None:
    other = api_login(client, "alice")
    logged_in = browser(app, "alice")
    secrets_made = [make_token(client, token, name)["secret"] for name in ("one", "two")]
    response = change(client, token, GOOD_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204
    assert me(client, token).status_code == 200
    for gone in (other, *secrets_made):
        refused(client, gone)
    assert not browser_in(logged_in)
    assert listed(client, "tokens", token) == []
    assert [s["current"] for s in listed(client, "sessions", token)] == [True]
    problem(call(client, "POST", "/sessions", json=credentials("alice")), 401, "bad_credentials")
    api_login(client, "alice", NEW_PASSWORD)


def test_password_change_by_cookie_keeps_the_browser(app: Flask, token: str) -> None:
    logged_in = browser(app, "alice")
    assert change(logged_in, None, GOOD_PASSWORD, NEW_PASSWORD, **SAME_ORIGIN).status_code == 204
    assert browser_in(logged_in)
    refused(logged_in, token)


def test_an_operators_reset_during_a_password_change_wins(
    app: Flask, client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator_acts_during_hash_check(monkeypatch, app, "alice", "set-password")
    problem(change(client, token, GOOD_PASSWORD, NEW_PASSWORD), 401, "not_authenticated")
    attackers = call(client, "POST", "/sessions", json=credentials("alice", NEW_PASSWORD))
    problem(attackers, 401, "bad_credentials")
    refused(client, token)


def test_password_change_refusals_end_nothing(client: FlaskClient, token: str) -> None:
    other = api_login(client, "alice")
    problem(change(client, token, "not my password", NEW_PASSWORD), 403, "bad_credentials")
    weak = problem(change(client, token, GOOD_PASSWORD, "12345678"), 422, "weak_password")
    assert weak["reason"] == "common"
    short = problem(change(client, token, GOOD_PASSWORD, "short"), 422, "validation")
    assert [e["field"] for e in short["errors"]] == ["new_password"]
    assert me(client, other).status_code == 200
    api_login(client, "alice")


def test_password_checks_are_throttled_like_logins_on_their_own_counter(
    app_factory: Callable[..., Flask], runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(throttle_free_failures=1, throttle_base_delay_seconds=60)
    add_user(app, "alice")
    client = app.test_client()
    token = api_login(client, "alice")
    problem(change(client, token, "not my password", NEW_PASSWORD), 403, "bad_credentials")
    hashes = HashCounter(monkeypatch)
    response = change(client, token, GOOD_PASSWORD, NEW_PASSWORD)
    body = problem(response, 429, "throttled")
    assert body["retry_after"] == int(response.headers["Retry-After"]) > 0
    assert hashes.calls == 0
    # The login form's counter is another: the owner (or anyone) still logs in.
    assert call(client, "POST", "/sessions", json=credentials("alice")).status_code == 201
    # users unlock clears this counter too.
    result = run_cli(runner, "users", "unlock", "alice")
    assert result.exit_code == 0, result.output
    assert change(client, token, GOOD_PASSWORD, NEW_PASSWORD).status_code == 204


def test_strangers_failing_to_log_in_cannot_stop_a_password_change(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(throttle_free_failures=1, throttle_base_delay_seconds=60)
    add_user(app, "alice")
    client = app.test_client()
    token = api_login(client, "alice")
    stranger = call(client, "POST", "/sessions", json=credentials("alice", "a wrong guess"))
    problem(stranger, 401, "bad_credentials")
    problem(call(client, "POST", "/sessions", json=credentials("alice")), 429, "throttled")
    assert change(client, token, GOOD_PASSWORD, NEW_PASSWORD).status_code == 204


# GET /me/sessions and DELETE /me/sessions/{id}


def test_sessions_list_shows_browsers_and_clients(
    app: Flask, client: FlaskClient, token: str
) -> None:
    add_user(app, "bob")
    api_login(client, "bob")
    logged_in = browser(app, "alice")
    found = listed(client, "sessions", token)
    assert sorted((s["kind"], s["current"]) for s in found) == [("api", True), ("browser", False)]
    by_cookie = listed(logged_in, "sessions", None, **SAME_ORIGIN)
    assert sorted((s["kind"], s["current"]) for s in by_cookie) == [("api", 0), ("browser", 1)]
    assert {s["id"] for s in by_cookie} == {s["id"] for s in found}
    assert parse_time(found[0]["created_at"]) >= parse_time(found[1]["created_at"])
    assert found[0]["user_agent"] is not None


def test_ending_a_session_by_id(app: Flask, client: FlaskClient, token: str) -> None:
    add_user(app, "bob")
    bobs = api_login(client, "bob")
    logged_in = browser(app, "alice")
    (theirs,) = [s for s in listed(client, "sessions", token) if s["kind"] == "browser"]
    (bob_session,) = listed(client, "sessions", bobs)
    assert call(client, "DELETE", f"/me/sessions/{theirs['id']}", token=token).status_code == 204
    assert not browser_in(logged_in)
    for missing in (bob_session["id"], theirs["id"], 2**31 - 1):
        response = call(client, "DELETE", f"/me/sessions/{missing}", token=token)
        problem(response, 404, "not_found")
    assert me(client, bobs).status_code == 200


@pytest.mark.parametrize("kind", ["sessions", "tokens"])
@pytest.mark.parametrize("number", [0, 2**31, 10**30])
def test_an_id_out_of_range_is_422(client: FlaskClient, token: str, kind: str, number: int) -> None:
    body = problem(call(client, "DELETE", f"/me/{kind}/{number}", token=token), 422, "validation")
    assert [e["field"] for e in body["errors"]] == [f"{kind[:-1]}_id"]


# Personal tokens


def test_a_personal_token_lives_until_revoked(client: FlaskClient, token: str) -> None:
    made = make_token(client, token, "  backup script ", expires_in=3600)
    assert made["secret"].startswith(personal_tokens.TOKEN_PREFIX)
    assert made["name"] == "backup script"
    assert lifetime(made) == timedelta(seconds=3600)
    assert made["last_used_at"] is None
    assert me(client, made["secret"]).get_json()["username"] == "alice"
    (shown,) = listed(client, "tokens", token)
    assert (shown["id"], shown["name"]) == (made["id"], "backup script")
    assert "secret" not in shown
    assert shown["last_used_at"] is not None
    assert lifetime(make_token(client, token, "default")) == timedelta(days=90)
    assert call(client, "DELETE", f"/me/tokens/{made['id']}", token=token).status_code == 204
    refused(client, made["secret"])
    problem(call(client, "DELETE", f"/me/tokens/{made['id']}", token=token), 404, "not_found")


def test_another_users_token_cannot_be_revoked(app: Flask, client: FlaskClient, token: str) -> None:
    add_user(app, "bob")
    bobs = make_token(client, api_login(client, "bob"))
    problem(call(client, "DELETE", f"/me/tokens/{bobs['id']}", token=token), 404, "not_found")
    assert me(client, bobs["secret"]).status_code == 200
    assert listed(client, "tokens", token) == []


def test_a_personal_token_cannot_make_tokens(client: FlaskClient, token: str) -> None:
    secret = make_token(client, token)["secret"]
    response = call(client, "POST", "/me/tokens", token=secret, json={"name": "more"})
    problem(response, 403, "session_required")
    assert len(listed(client, "tokens", token)) == 1


def test_tokens_stop_at_the_limit(client: FlaskClient, token: str) -> None:
    for number in range(personal_tokens.MAX_PER_USER):
        make_token(client, token, f"token {number}")
    response = call(client, "POST", "/me/tokens", token=token, json={"name": "one more"})
    problem(response, 409, "too_many_tokens")
    assert len(listed(client, "tokens", token)) == personal_tokens.MAX_PER_USER


def test_an_expired_token_is_401(
    client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_token(client, token, expires_in=60)
    assert me(client, made["secret"]).status_code == 200
    later = parse_time(made["expires_at"])
    monkeypatch.setattr(guards, "now", lambda: later)
    refused(client, made["secret"])
    assert listed(client, "tokens", token) == []


def test_a_weak_password_must_change_before_tokens(
    app: Flask, client: FlaskClient, runner: CliRunner, tmp_path: Path
) -> None:
    file = tmp_path / "users.json"
    file.write_text(json.dumps({"weakling": {"password": "Baldy1"}}))
    assert run_cli(runner, "users", "import", str(file)).exit_code == 0
    response = call(client, "POST", "/sessions", json=credentials("weakling", "Baldy1"))
    session = response.get_json()["token"]
    assert response.get_json()["user"]["must_change_password"] is True
    response = call(client, "POST", "/me/tokens", token=session, json={"name": "x"})
    problem(response, 403, "password_change_required")
    assert change(client, session, "Baldy1", NEW_PASSWORD).status_code == 204
    assert me(client, session).get_json()["must_change_password"] is False
    make_token(client, session)


# Everything that ends all of a user's credentials ends their API ones too


@pytest.mark.parametrize(
    "commands",
    [
        [],
        [("users", "set-password", "alice", "--password-stdin")],
        [("users", "remove", "alice", "--yes")],
        [("users", "disable", "alice")],
        [("users", "disable", "alice"), ("users", "enable", "alice")],
    ],
    ids=["logout-everywhere", "set-password", "remove", "disable", "disable-and-enable"],
)
def test_api_credentials_end_with_the_others(
    app: Flask, client: FlaskClient, runner: CliRunner, token: str, commands: list[tuple[str, ...]]
) -> None:
    """No commands: the user logs out everywhere from the account page of a browser."""
    secret = make_token(client, token)["secret"]
    if not commands:
        logged_in = browser(app, "alice")
        assert logged_in.post("/account/logout-everywhere", headers=SAME_ORIGIN).status_code == 303
    for command in commands:
        result = run_cli(runner, *command, input=NEW_PASSWORD + "\n")
        assert result.exit_code == 0, result.output
    refused(client, token)
    refused(client, secret)


# Malformed requests


def post_raw(client: FlaskClient, data: bytes, content_type: str | None) -> TestResponse:
    """Post raw bytes to the login route with ``content_type`` (None: no Content-Type)."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    return call(client, "POST", "/sessions", headers=headers, data=data)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"username": "alice",', JSON, 400, "malformed_json"),
        (b"", JSON, 400, "malformed_json"),
        (b'{"username": "\xff\xfe", "password": "x"}', JSON, 400, "malformed_json"),
        (b'{"username": "alice", "password": NaN}', JSON, 400, "malformed_json"),
        (b'{"username": "alice", "password": -Infinity}', JSON, 400, "malformed_json"),
        (b"[" * 60_000, JSON, 400, "malformed_json"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, JSON, 400, "malformed_json"),
        (b"[]", JSON, 422, "validation"),
        (b'"alice"', JSON, 422, "validation"),
        (b"5", JSON, 422, "validation"),
        (b"null", JSON, 422, "validation"),
        (b"{}", None, 415, "unsupported_media_type"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
        (b"username=alice&password=x", FORM, 415, "unsupported_media_type"),
        (b'{"username": "' + b"a" * 70_000 + b'"}', JSON, 413, "too_large"),
    ],
)
def test_a_malformed_body_is_a_problem(
    client: FlaskClient, data: bytes, content_type: str | None, status: int, code: str
) -> None:
    problem(post_raw(client, data, content_type), status, code)


def test_very_deep_nesting_is_400_not_500(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(max_content_length=1_000_000).test_client()
    problem(post_raw(client, b"[" * 100_000, JSON), 400, "malformed_json")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sessions", {"username": 5, "password": "x"}, "username"),
        ("/sessions", {"username": "alice", "password": None}, "password"),
        ("/sessions", {"username": "alice"}, "password"),
        ("/sessions", {**credentials("alice"), "remember": True}, "remember"),
        ("/sessions", {**credentials("alice"), "device": 5}, "device"),
        ("/sessions", {**credentials("alice"), "device": True}, "device"),
        ("/sessions", {**credentials("alice"), "device": ["a device"]}, "device"),
        ("/sessions", {**credentials("alice"), "device": {"id": "a device"}}, "device"),
        ("/sessions", {**credentials("alice"), "device": "x" * 513}, "device"),
        ("/users", {"username": ["alice"], "password": GOOD_PASSWORD}, "username"),
        ("/users", {"username": "a" * 257, "password": GOOD_PASSWORD}, "username"),
        ("/me/password", {"current_password": GOOD_PASSWORD}, "new_password"),
        ("/me/tokens", {"name": "   "}, "name"),
        ("/me/tokens", {"name": "line\nbreak"}, "name"),
        ("/me/tokens", {"name": ""}, "name"),
        ("/me/tokens", {"name": "x" * 101}, "name"),
        ("/me/tokens", {"name": "short", "expires_in": 59}, "expires_in"),
        ("/me/tokens", {"name": "long", "expires_in": 366 * 86400 + 1}, "expires_in"),
        ("/me/tokens", {"name": "text", "expires_in": "60"}, "expires_in"),
        ("/me/tokens", {"name": "fraction", "expires_in": 60.5}, "expires_in"),
        ("/me/tokens", {"name": "bool", "expires_in": True}, "expires_in"),
    ],
)
def test_a_wrong_body_is_422_naming_the_field(
    client: FlaskClient, token: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = call(client, "POST", path, token=token, json=body)
    assert [e["field"] for e in problem(response, 422, "validation")["errors"]] == [field]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/me", "GET"), ("GET", "/sessions", "POST"), ("POST", "/sessions/current", "DELETE")],
)
def test_a_wrong_method_is_405_with_allow_and_a_wrong_path_404(
    client: FlaskClient, method: str, path: str, allowed: str
) -> None:
    response = call(client, method, path, json={})
    problem(response, 405, "method_not_allowed")
    assert allowed in {m.strip() for m in response.headers["Allow"].split(",")}
    problem(call(client, method, path + "/nothing/here", json={}), 404, "not_found")


# Requests from other sites


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/sessions/current", None),
        ("POST", "/me/tokens", {"name": "x"}),
        ("POST", "/me/password", {"current_password": GOOD_PASSWORD, "new_password": "abc12345"}),
        ("DELETE", "/me/sessions/1", None),
    ],
)
def test_a_cross_site_cookie_write_is_403(app: Flask, method: str, path: str, body: Any) -> None:
    add_user(app, "alice")
    logged_in = browser(app, "alice")
    problem(call(logged_in, method, path, headers=CROSS_SITE, json=body), 403, "forbidden")
    assert browser_in(logged_in)
    api_login(logged_in, "alice")


def test_a_cross_site_bearer_write_passes(app: Flask, client: FlaskClient, token: str) -> None:
    logged_in = browser(app, "alice")
    response = call(
        logged_in, "POST", "/me/tokens", token=token, headers=CROSS_SITE, json={"name": "x"}
    )
    assert response.status_code == 201
    ended = call(logged_in, "DELETE", "/sessions/current", token=token, headers=CROSS_SITE)
    assert ended.status_code == 204
    refused(client, token)
    assert browser_in(logged_in)


def test_a_cross_site_read_does_not_use_the_cookie(app: Flask) -> None:
    add_user(app, "alice")
    logged_in = browser(app, "alice")
    problem(me(logged_in, **CROSS_SITE), 401, "not_authenticated")
    problem(me(logged_in, **{"Sec-Fetch-Site": "same-site"}), 401, "not_authenticated")
    problem(me(logged_in, Origin="https://evil.example"), 401, "not_authenticated")
    assert me(logged_in, Origin="http://localhost").status_code == 200
    assert me(logged_in).status_code == 200


def test_no_cors_headers_by_default(client: FlaskClient, token: str) -> None:
    for method in ("GET", "OPTIONS"):
        headers = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"}
        response = call(client, method, "/me", token=token, headers=headers)
        assert response.status_code == 200
        assert not [h for h in response.headers.keys() if h.lower().startswith("access-control-")]


@pytest.fixture
def cors_client(app_factory: Callable[..., Flask]) -> FlaskClient:
    """Return a client of an app whose API the pages of APP_ORIGIN may call."""
    app = app_factory(cors_origins=f"{APP_ORIGIN}, https://other.example:8443")
    add_user(app, "alice")
    return app.test_client()


def test_a_listed_origin_may_preflight_and_call_with_a_token(cors_client: FlaskClient) -> None:
    from_app = {"Origin": APP_ORIGIN, **CROSS_SITE}
    response = call(cors_client, "POST", "/sessions", headers=from_app, json=credentials("alice"))
    assert response.status_code == 201
    token = response.get_json()["token"]
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    answer = me(cors_client, token, **from_app)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Origin" in answer.vary
    assert "Access-Control-Allow-Credentials" not in answer.headers
    assert "WWW-Authenticate" in answer.headers["Access-Control-Expose-Headers"]
    failed = me(cors_client, **from_app)
    assert failed.status_code == 401
    assert failed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    asking = {"Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "x"}
    response = call(cors_client, "OPTIONS", "/me/tokens/7", headers={**from_app, **asking})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_unlisted_origin_gets_no_cors_and_no_cookie(cors_client: FlaskClient) -> None:
    evil = {"Origin": "https://evil.example", **CROSS_SITE}
    response = call(cors_client, "POST", "/sessions", headers=evil, json=credentials("alice"))
    problem(response, 403, "forbidden")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.vary
    preflight = {**evil, "Access-Control-Request-Method": "POST"}
    response = call(cors_client, "OPTIONS", "/sessions", headers=preflight)
    assert "Access-Control-Allow-Origin" not in response.headers
    listed_cookie = {"Origin": APP_ORIGIN, **CROSS_SITE}
    assert login(cors_client, "alice").status_code == 303
    problem(me(cors_client, **listed_cookie), 401, "not_authenticated")
    body = {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD}
    response = call(cors_client, "POST", "/me/password", headers=listed_cookie, json=body)
    problem(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    ("setting", "origin"),
    [
        ("https://app.example:443", "https://app.example"),
        ("HTTP://App.Example:80", "http://app.example"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_cors_origins_match_as_browsers_write_them(
    app_factory: Callable[..., Flask], setting: str, origin: str
) -> None:
    client = app_factory(cors_origins=setting).test_client()
    response = call(client, "GET", "/me", headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize(
    "origins", ["app.example", "https://a/b", "ftp://app.example", "https://app.example/"]
)
def test_a_bad_cors_origin_stops_the_app(app_factory: Callable[..., Flask], origins: str) -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        app_factory(cors_origins=origins)


# The OpenAPI description


def test_openapi_describes_every_route_and_every_problem(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        # Werkzeug's <int:id> and <token> are OpenAPI's {id} and {token}.
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        assert methods <= set(spec["paths"][path]), (path, methods)
    for path, operations in spec["paths"].items():
        assert path.startswith(API + "/")
        for method, operation in operations.items():
            statuses = {int(status) for status in operation["responses"]}
            assert 422 in statuses, (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert set(answer["content"]) == {PROBLEM}, (method, path, status)
            anonymous = ("createSession", "createUser", "completeSession")
            anonymous += ("askPasswordReset", "completePasswordReset")
            if operation["operationId"] not in anonymous:
                assert operation["security"] == [{"bearer": []}]
                assert 401 in statuses


def test_openapi_describes_the_device_given_and_taken_back(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    given = schemas["SessionCreated"]
    assert "device" in given["required"]
    assert "Keep it" in given["properties"]["device"]["description"]
    taken = schemas["Credentials"]
    assert "device" not in taken.get("required", [])
    assert {"type": "string", "maxLength": 512} in taken["properties"]["device"]["anyOf"]
    created = spec["paths"][API + "/sessions"]["post"]["responses"]["201"]
    again = created["links"]["LogInAgain"]
    assert again["requestBody"]["device"] == "$response.body#/device"


def test_openapi_describes_the_groups_in_me(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    answer = spec["paths"][API + "/me"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MeOut"}
    me_out = spec["components"]["schemas"]["MeOut"]
    assert set(me_out["required"]) == ME_FIELDS
    groups = me_out["properties"]["groups"]
    assert groups["type"] == "array" and groups["items"] == {"type": "string"}
    assert "sorted" in groups["description"]
