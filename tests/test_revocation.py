"""Test that a credential ended through one instance is refused by another at its next request.

Two apps built apart on one database stand for two instances, or two workers: each has its own
engine and connections and shares nothing with the other but the database. Every credential
is first seen working on the second app, so that it has had every chance to keep what it found,
then ended through the first; the second app's very next request must refuse it. A browser's
cookie is checked on a page and on the API (same-site), a bearer token on the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from helpers import (
    CHEAP_ARGON2,
    COOKIE,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    OPERATOR_CHANGES,
    SAME_ORIGIN,
    TIMEOUT,
    LiveServer,
    add_user,
    change_as_operator,
    login,
    run_yupnope,
)

#: Run every test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

API = "/api/v1"


@pytest.fixture
def pair(app_factory: Callable[..., Flask]) -> tuple[Flask, Flask]:
    """Return two apps on one database, where alice has an account."""
    first = app_factory()
    add_user(first, "alice")
    return first, app_factory()


def browser_token(app: Flask) -> str:
    """Log alice in through the login form on ``app``; return her session cookie's token."""
    client = app.test_client()
    assert login(client, "alice").status_code == 303
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def api_token(app: Flask) -> str:
    """Log alice in through the API on ``app``; return the bearer token."""
    body = {"username": "alice", "password": GOOD_PASSWORD}
    response = app.test_client().post(f"{API}/sessions", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    token: str = response.get_json()["token"]
    return token


def personal_token(app: Flask, session: str) -> dict[str, Any]:
    """Make a personal token on ``app`` with the API session ``session``; return its 201 body."""
    response = app.test_client().post(
        f"{API}/me/tokens", json={"name": "script"}, headers=bearer(session)
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    made: dict[str, Any] = response.get_json()
    return made


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header that sends ``token``."""
    return {"Authorization": f"Bearer {token}"}


def delete(app: Flask, path: str, token: str) -> None:
    """Send DELETE ``path`` under the API to ``app`` with the bearer ``token``; assert 204."""
    response = app.test_client().delete(f"{API}{path}", headers=bearer(token))
    assert response.status_code == 204, response.get_data(as_text=True)


def with_cookie(app: Flask, token: str) -> Any:
    """Return a client of ``app`` that holds only the session cookie ``token``."""
    client = app.test_client()
    client.set_cookie(COOKIE, token)
    return client


def page_opens(app: Flask, token: str) -> bool:
    """Return whether the session cookie ``token`` shows /yup on ``app``, else assert the form."""
    response = with_cookie(app, token).get("/yup")
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    return False


def cookie_opens_api(app: Flask, token: str) -> bool:
    """Return whether the session cookie ``token`` opens GET /me on ``app`` from a page."""
    return _me(with_cookie(app, token).get(f"{API}/me", headers=SAME_ORIGIN))


def bearer_opens_api(app: Flask, token: str) -> bool:
    """Return whether the bearer token ``token`` opens GET /me on ``app``."""
    return _me(app.test_client().get(f"{API}/me", headers=bearer(token)))


def _me(response: Any) -> bool:
    """Return whether GET /me answered alice's account, else assert its 401."""
    if response.status_code == 200:
        assert response.get_json()["username"] == "alice"
        return True
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["code"] == "not_authenticated"
    return False


def test_a_browser_logged_out_on_one_instance_is_refused_by_the_other(
    pair: tuple[Flask, Flask],
) -> None:
    a, b = pair
    token = browser_token(a)
    assert page_opens(b, token) and cookie_opens_api(b, token)
    assert with_cookie(a, token).post("/logout", headers=SAME_ORIGIN).status_code == 303
    assert not page_opens(b, token)
    assert not cookie_opens_api(b, token)


def test_each_credential_ended_alone_on_one_instance_is_refused_by_the_other(
    pair: tuple[Flask, Flask],
) -> None:
    """An API logout, a token's revocation, a session ended by id: each ends that one only."""
    a, b = pair
    cookie, token, session = browser_token(a), api_token(a), api_token(a)
    made = personal_token(a, session)
    listed = a.test_client().get(f"{API}/me/sessions", headers=bearer(session)).get_json()
    (browser,) = [s for s in listed["sessions"] if s["kind"] == "browser"]
    assert page_opens(b, cookie) and bearer_opens_api(b, token)
    assert bearer_opens_api(b, made["secret"]) and bearer_opens_api(b, session)

    delete(a, "/sessions/current", token)
    assert not bearer_opens_api(b, token)
    assert page_opens(b, cookie) and bearer_opens_api(b, made["secret"])

    delete(a, f"/me/tokens/{made['id']}", session)
    assert not bearer_opens_api(b, made["secret"])
    assert page_opens(b, cookie)

    delete(a, f"/me/sessions/{browser['id']}", session)
    assert not page_opens(b, cookie)
    assert bearer_opens_api(b, session)


def end_everything(a: Flask, how: str, cookie: str, actor: str) -> None:
    """End alice's credentials through ``a``, by her own hand or by an operator's.

    She logs out everywhere with the browser ``cookie``, or changes her password with the API
    session ``actor``.
    """
    if how == "logout-everywhere":
        client = with_cookie(a, cookie)
        assert client.post("/account/logout-everywhere", headers=SAME_ORIGIN).status_code == 303
    elif how == "password-change":
        body = {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD}
        changed = a.test_client().post(f"{API}/me/password", json=body, headers=bearer(actor))
        assert changed.status_code == 204, changed.get_data(as_text=True)
    else:
        with a.app_context():
            change_as_operator("alice", how)


@pytest.mark.parametrize("how", ["logout-everywhere", "password-change", *OPERATOR_CHANGES])
def test_every_credential_ended_on_one_instance_is_refused_by_the_other(
    pair: tuple[Flask, Flask], how: str
) -> None:
    a, b = pair
    cookie, session, actor = browser_token(a), api_token(a), api_token(a)
    secret = personal_token(a, session)["secret"]
    assert page_opens(b, cookie) and cookie_opens_api(b, cookie)
    assert bearer_opens_api(b, session) and bearer_opens_api(b, secret)
    end_everything(a, how, cookie, actor)
    assert not page_opens(b, cookie)
    assert not cookie_opens_api(b, cookie)
    assert not bearer_opens_api(b, session)
    assert not bearer_opens_api(b, secret)
    # A password change keeps the session it was made with, on every instance alike.
    assert bearer_opens_api(b, actor) == (how == "password-change")


@pytest.mark.live
def test_a_session_ended_through_one_worker_is_refused_by_every_worker(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    # Each request here comes on a connection of its own, which the kernel hands to either
    # worker (a listener each, SO_REUSEPORT): forty of them reach both, but for odds of 2^-39.
    server = live_server_factory(workers=2, **CHEAP_ARGON2)
    add_user_live(server)
    made = requests.post(
        f"{server.url}{API}/sessions",
        json={"username": "alice", "password": GOOD_PASSWORD},
        timeout=TIMEOUT,
    )
    token = made.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def statuses() -> set[int]:
        return {
            requests.get(f"{server.url}{API}/me", headers=headers, timeout=TIMEOUT).status_code
            for _ in range(40)
        }

    assert statuses() == {200}
    ended = requests.delete(f"{server.url}{API}/sessions/current", headers=headers, timeout=TIMEOUT)
    assert ended.status_code == 204
    assert statuses() == {401}


def add_user_live(server: LiveServer) -> None:
    """Create alice in the live server's instance with the operator's command."""
    done = run_yupnope(
        server.instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD
    )
    assert done.returncode == 0, done.stderr
