"""Test the second factors over HTTP: the second step's page, the account's pages, the API, sudo
mode, the required policy, the two_factor access rule and the operator's reset.

Codes come from pyotp at the clock's time, as the server reads it: a code typed at the edge of
its 30 seconds is still one step inside the window either side.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from helpers import (
    GOOD_PASSWORD,
    SAME_ORIGIN,
    add_user,
    assert_one_line_error,
    browser_of,
    count_rows,
    login,
    run_cli,
)
from yupnope import wiring
from yupnope.kinds import EventKind
from yupnope.models import LoginEvent, Session

API = "/api/v1"

#: The rules of the forward-auth tests: one app asks for a second factor, the rest a login.
RULES = {
    "default_policy": "deny",
    "rules": [
        {"domain": ["vault.example.com"], "policy": "two_factor"},
        {"domain": ["*.example.com"], "policy": "signed_in"},
    ],
}

PORTAL = {"cookie_domain": "example.com", "public_url": "https://login.example.com"}


def now_code(secret: str, steps: int = 0) -> str:
    """Return the app's code ``steps`` steps from now."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps))


def wrong_code(secret: str) -> str:
    """Return six digits that are the app's code at no step near now."""
    near = {now_code(secret, steps) for steps in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


def api_login(client: FlaskClient, name: str = "alice") -> Any:
    """Post a name and the password to the API's login."""
    return client.post(f"{API}/sessions", json={"username": name, "password": GOOD_PASSWORD})


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def enrol_through_api(client: FlaskClient, headers: dict[str, str]) -> tuple[str, list[str]]:
    """Set up an authenticator app with the API; return its secret and the recovery codes."""
    started = client.post(f"{API}/me/totp", headers=headers)
    assert started.status_code == 201, started.json
    secret = started.json["secret"]
    confirmed = client.post(
        f"{API}/me/totp/confirm", headers=headers, json={"code": now_code(secret)}
    )
    assert confirmed.status_code == 200, confirmed.json
    return secret, confirmed.json["recovery_codes"]


@pytest.fixture
def alice(app: Flask) -> Flask:
    add_user(app, "alice")
    return app


@pytest.fixture
def enrolled(alice: Flask) -> tuple[Flask, str, list[str]]:
    """Return an app where alice has set up an app (with the step of now taken), its secret,
    and her recovery codes."""
    client = alice.test_client()
    token = api_login(client).json["token"]
    secret, codes = enrol_through_api(client, bearer(token))
    return alice, secret, codes


def age_sessions(app: Flask, minutes: int) -> None:
    """Make every session's last proof of its owner ``minutes`` old, as time would."""
    with app.app_context():
        store = wiring.store()
        with store.tx.write():
            store.session.execute(
                update(Session).values(
                    authenticated_at=datetime.now(UTC) - timedelta(minutes=minutes)
                )
            )


# The API.


def test_the_api_asks_for_a_code_after_the_password(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, _ = enrolled
    client = app.test_client()
    asked = api_login(client)
    assert asked.status_code == 401
    assert asked.mimetype == "application/problem+json"
    assert asked.json["code"] == "second_factor_required"
    assert asked.headers["WWW-Authenticate"].startswith("Bearer")
    challenge = asked.json["challenge"]
    wrong = client.post(
        f"{API}/sessions/second-factor", json={"challenge": challenge, "code": wrong_code(secret)}
    )
    assert wrong.status_code == 401 and wrong.json["code"] == "bad_credentials"
    code = now_code(secret, 1)
    done = client.post(f"{API}/sessions/second-factor", json={"challenge": challenge, "code": code})
    assert done.status_code == 201, done.json
    assert set(done.json) == {"token", "expires_at", "user", "device"}
    me = client.get(f"{API}/me", headers=bearer(done.json["token"]))
    assert me.status_code == 200 and me.json["username"] == "alice"
    # The challenge served once; the code too, for any later login.
    again = client.post(
        f"{API}/sessions/second-factor", json={"challenge": challenge, "code": code}
    )
    assert again.status_code == 401 and again.json["code"] == "challenge_expired"
    replayed = client.post(
        f"{API}/sessions/second-factor",
        json={"challenge": api_login(client).json["challenge"], "code": code},
    )
    assert replayed.status_code == 401 and replayed.json["code"] == "bad_credentials"


def test_the_api_second_step_counts_a_known_device_on_its_own_budget(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, codes = enrolled
    client = app.test_client()
    owner = client.post(
        f"{API}/sessions/second-factor",
        json={"challenge": api_login(client).json["challenge"], "code": codes[0]},
    )
    device = owner.json["device"]
    stranger = {"challenge": api_login(client).json["challenge"], "code": wrong_code(secret)}
    for _ in range(5):
        assert client.post(f"{API}/sessions/second-factor", json=stranger).status_code == 401
    assert client.post(f"{API}/sessions/second-factor", json=stranger).status_code == 429
    own = client.post(
        f"{API}/sessions", json={"username": "alice", "password": GOOD_PASSWORD, "device": device}
    )
    done = client.post(
        f"{API}/sessions/second-factor",
        json={"challenge": own.json["challenge"], "code": codes[1], "device": device},
    )
    assert done.status_code == 201, done.json


def test_the_api_second_step_is_throttled_with_retry_after(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, _ = enrolled
    client = app.test_client()
    challenge = api_login(client).json["challenge"]
    sent = {"challenge": challenge, "code": wrong_code(secret)}
    statuses = [client.post(f"{API}/sessions/second-factor", json=sent) for _ in range(6)]
    assert [answer.status_code for answer in statuses] == [401] * 5 + [429]
    assert statuses[-1].json["code"] == "throttled"
    assert int(statuses[-1].headers["Retry-After"]) == statuses[-1].json["retry_after"] > 0


@pytest.mark.parametrize(
    "body",
    [{}, {"challenge": "x"}, {"challenge": "x", "code": 123456}, {"challenge": "", "code": "1"}],
    ids=["empty", "no code", "a number", "empty challenge"],
)
def test_a_malformed_second_step_is_a_422(alice: Flask, body: dict[str, Any]) -> None:
    answer = alice.test_client().post(f"{API}/sessions/second-factor", json=body)
    assert answer.status_code == 422 and answer.json["code"] == "validation"


def test_an_account_sets_up_and_removes_its_app_through_the_api(alice: Flask) -> None:
    client = alice.test_client()
    headers = bearer(api_login(client).json["token"])
    described = client.get(f"{API}/me/second-factors", headers=headers)
    assert described.json == {"totp": False, "recovery_codes_left": 0, "recovery_codes_low": True}
    started = client.post(f"{API}/me/totp", headers=headers)
    assert started.status_code == 201
    assert started.json["uri"].startswith("otpauth://totp/yupnope:alice?secret=")
    secret = started.json["secret"]
    wrong = client.post(f"{API}/me/totp/confirm", headers=headers, json={"code": "000000"})
    if now_code(secret) != "000000":
        assert wrong.status_code == 422 and wrong.json["code"] == "wrong_code"
        assert wrong.json["errors"] if "errors" in wrong.json else True
    confirmed = client.post(
        f"{API}/me/totp/confirm", headers=headers, json={"code": now_code(secret)}
    )
    assert confirmed.status_code == 200 and len(confirmed.json["recovery_codes"]) == 10
    again = client.post(f"{API}/me/totp", headers=headers)
    assert again.status_code == 409 and again.json["code"] == "second_factor_exists"
    described = client.get(f"{API}/me/second-factors", headers=headers)
    assert described.json == {"totp": True, "recovery_codes_left": 10, "recovery_codes_low": False}
    renewed = client.post(f"{API}/me/recovery-codes", headers=headers)
    assert renewed.status_code == 201
    assert not set(renewed.json["recovery_codes"]) & set(confirmed.json["recovery_codes"])
    assert client.delete(f"{API}/me/totp", headers=headers).status_code == 204
    gone = client.delete(f"{API}/me/totp", headers=headers)
    assert gone.status_code == 404 and gone.json["code"] == "not_found"
    none_to_renew = client.post(f"{API}/me/recovery-codes", headers=headers)
    assert none_to_renew.status_code == 409 and none_to_renew.json["code"] == "second_factor_needed"
    assert api_login(client).status_code == 201


def test_sudo_mode_guards_the_second_factors_and_new_tokens(alice: Flask) -> None:
    client = alice.test_client()
    headers = bearer(api_login(client).json["token"])
    personal = client.post(f"{API}/me/tokens", headers=headers, json={"name": "script"})
    assert personal.status_code == 201
    age_sessions(alice, 11)
    for method, path in (
        ("post", "/me/totp"),
        ("delete", "/me/totp"),
        ("post", "/me/recovery-codes"),
        ("post", "/me/tokens"),
    ):
        body = {"json": {"name": "another"}} if path == "/me/tokens" else {}
        answer = getattr(client, method)(f"{API}{path}", headers=headers, **body)
        assert answer.status_code == 403, (path, answer.json)
        assert answer.json["code"] == "reauthentication_required"
        assert "within the last 10 minutes" in answer.json["detail"]
    wrong = client.post(f"{API}/me/sudo", headers=headers, json={"password": "not it at all"})
    assert wrong.status_code == 403 and wrong.json["code"] == "bad_credentials"
    confirmed = client.post(f"{API}/me/sudo", headers=headers, json={"password": GOOD_PASSWORD})
    assert confirmed.status_code == 204
    assert client.post(f"{API}/me/totp", headers=headers).status_code == 201
    # A personal token is never in sudo mode, whatever its age.
    script = bearer(personal.json["secret"])
    assert client.post(f"{API}/me/totp", headers=script).status_code == 403
    refused = client.post(f"{API}/me/sudo", headers=script, json={"password": GOOD_PASSWORD})
    assert refused.status_code == 403 and refused.json["code"] == "reauthentication_required"


# The pages.


def test_the_login_page_asks_for_the_code_on_a_page_of_its_own(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, _ = enrolled
    browser = app.test_client()
    first = login(browser, "alice")
    assert first.status_code == 303
    assert first.headers["Location"] == "/login/second-factor"
    set_cookies = first.headers.getlist("Set-Cookie")
    held = next(c for c in set_cookies if c.startswith("yupnope_second_step="))
    assert "HttpOnly" in held and "SameSite=Strict" in held
    assert "Path=/login/second-factor" in held and "Max-Age=300" in held
    assert not any(c.startswith("yupnope_session=") for c in set_cookies)
    assert browser.get("/yup").headers["Location"] == "/"
    page = browser.get("/login/second-factor")
    assert page.status_code == 200
    assert 'autocomplete="one-time-code"' in page.text
    refused = browser.post(
        "/login/second-factor", headers=SAME_ORIGIN, data={"code": wrong_code(secret)}
    )
    assert refused.status_code == 401
    assert 'aria-invalid="true"' in refused.text
    assert "That code is not right, or it was used already." in refused.text
    done = browser.post(
        "/login/second-factor", headers=SAME_ORIGIN, data={"code": now_code(secret, 1)}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/yup"
    cookies = done.headers.getlist("Set-Cookie")
    assert any(c.startswith("yupnope_session=") for c in cookies)
    assert any(c.startswith("yupnope_second_step=;") for c in cookies)
    assert browser.get("/yup").status_code == 200


def test_the_second_step_page_without_a_login_under_way_goes_back_to_the_form(
    alice: Flask,
) -> None:
    browser = alice.test_client()
    assert browser.get("/login/second-factor").headers["Location"] == "/"
    browser.set_cookie("yupnope_second_step", "made-up", path="/login/second-factor")
    gone = browser.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": "123456"})
    assert gone.status_code == 200
    assert "This login has expired." in gone.text
    assert any(c.startswith("yupnope_second_step=;") for c in gone.headers.getlist("Set-Cookie"))


def test_the_second_step_keeps_where_the_login_was_going(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(**PORTAL)
    add_user(app, "alice")
    client = browser_of(app)
    headers = bearer(api_login(client).json["token"])
    secret, _ = enrol_through_api(client, headers)
    rd = "https://notes.example.com/page?x=1"
    first = client.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "rd": rd},
        headers=SAME_ORIGIN,
    )
    assert first.headers["Location"].startswith("/login/second-factor?rd=")
    page = client.get(first.headers["Location"])
    assert f'name="rd" value="{rd}"' in page.text.replace("&amp;", "&")
    done = client.post(
        "/login/second-factor",
        headers=SAME_ORIGIN,
        data={"code": now_code(secret, 1), "rd": rd},
    )
    assert done.headers["Location"] == rd


def test_an_app_is_set_up_from_the_account_page(alice: Flask) -> None:
    browser = alice.test_client()
    assert login(browser, "alice").headers["Location"] == "/yup"
    account = browser.get("/account")
    assert "Off: a login asks for your password alone." in account.text
    intro = browser.get("/account/totp")
    assert intro.status_code == 200 and "<svg" not in intro.text
    started = browser.post("/account/totp", headers=SAME_ORIGIN)
    assert started.headers["Location"] == "/account/totp"
    shown = browser.get("/account/totp")
    assert '<svg width="' in shown.text and "<script" not in shown.text.split("<main>")[1]
    secret = re.search(r'<code class="secret" id="secret">([A-Z2-7]+)</code>', shown.text)
    assert secret is not None
    wrong = browser.post(
        "/account/totp/confirm", headers=SAME_ORIGIN, data={"code": wrong_code(secret[1])}
    )
    assert wrong.status_code == 422 and 'aria-invalid="true"' in wrong.text
    confirmed = browser.post(
        "/account/totp/confirm", headers=SAME_ORIGIN, data={"code": now_code(secret[1])}
    )
    assert confirmed.status_code == 200
    shown_codes = re.findall(r"<li><code>([A-Z2-9-]{19})</code></li>", confirmed.text)
    assert len(shown_codes) == 10
    account = browser.get("/account")
    assert "On: every login asks for the app's code" in account.text
    assert "10 recovery codes left." in account.text
    assert browser.get("/account/totp").headers["Location"] == "/account"


def test_the_account_page_warns_when_few_recovery_codes_are_left(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, codes = enrolled
    for code in codes[:7]:
        browser = app.test_client()
        login(browser, "alice")
        answer = browser.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": code})
        assert answer.headers["Location"] == "/yup"
    page = browser.get("/account")
    assert "3 recovery codes left. Make new ones before you run out." in page.text


def test_the_pages_ask_for_the_password_again_outside_sudo_mode(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, _ = enrolled
    browser = app.test_client()
    login(browser, "alice")
    browser.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": now_code(secret, 1)})
    age_sessions(app, 11)
    asked = browser.post("/account/totp/delete", headers=SAME_ORIGIN)
    assert asked.headers["Location"] == "/account/confirm?next=/account&then=/account/totp/delete"
    form = browser.get(asked.headers["Location"])
    assert 'name="next" value="/account"' in form.text
    assert 'name="then" value="/account/totp/delete"' in form.text
    sent = {"password": "nope nope", "next": "/account", "then": "/account/totp/delete"}
    wrong = browser.post("/account/confirm", headers=SAME_ORIGIN, data=sent)
    assert wrong.status_code == 403 and "The password is not right." in wrong.text
    assert 'name="then" value="/account/totp/delete"' in wrong.text
    # The change asked for is made once the check passes: the form is posted on to it.
    sent["password"] = GOOD_PASSWORD
    passed = browser.post("/account/confirm", headers=SAME_ORIGIN, data=sent)
    assert passed.status_code == 307 and passed.headers["Location"] == "/account/totp/delete"
    removed = browser.post(passed.headers["Location"], headers=SAME_ORIGIN, data=sent)
    assert removed.headers["Location"] == "/account?done=totp-removed"
    assert "Your authenticator app was removed." in browser.get(removed.headers["Location"]).text


@pytest.mark.parametrize(
    "then",
    [
        "/account/delete",
        "/account/password",
        "https://evil.example/account/totp/delete",
        "//evil.example/x",
        "/account/totp/delete/../../delete",
        "/nowhere",
    ],
)
def test_a_password_check_goes_on_only_to_the_changes_it_guards(alice: Flask, then: str) -> None:
    browser = alice.test_client()
    login(browser, "alice")
    sent = {"password": GOOD_PASSWORD, "next": "/account", "then": then}
    passed = browser.post("/account/confirm", headers=SAME_ORIGIN, data=sent)
    # Never the password posted on to another form (deleting the account takes one).
    assert passed.status_code == 303 and passed.headers["Location"] == "/account"
    form = browser.get(f"/account/confirm?next=/account&then={then}")
    assert 'name="then"' not in form.text


def test_new_recovery_codes_are_shown_once_from_the_account_page(
    enrolled: tuple[Flask, str, list[str]],
) -> None:
    app, secret, old = enrolled
    browser = app.test_client()
    login(browser, "alice")
    browser.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": now_code(secret, 1)})
    made = browser.post("/account/recovery-codes", headers=SAME_ORIGIN)
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"
    new = re.findall(r"<li><code>([A-Z2-9-]{19})</code></li>", made.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert "the codes you had before no longer work" in made.text


# The required policy and the access rules.


def test_a_required_second_factor_leads_to_the_enrolment(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(second_factor="required")
    add_user(app, "alice")
    browser = app.test_client()
    assert login(browser, "alice").headers["Location"] == "/account/totp"
    assert browser.get("/yup").headers["Location"] == "/account/totp"
    assert browser.get("/").headers["Location"] == "/account/totp"
    assert "This server asks every account for a second factor." in browser.get("/account").text
    browser.post("/account/totp", headers=SAME_ORIGIN)
    shown = browser.get("/account/totp").text
    secret = re.search(r'id="secret">([A-Z2-7]+)<', shown)
    assert secret is not None
    confirmed = browser.post(
        "/account/totp/confirm", headers=SAME_ORIGIN, data={"code": now_code(secret[1])}
    )
    assert confirmed.status_code == 200
    # The session that proved the app counts as one made with it.
    assert browser.get("/yup").status_code == 200


def test_a_wrong_second_factor_setting_stops_the_app(app_factory: Callable[..., Flask]) -> None:
    from yupnope.config import ConfigError

    with pytest.raises(
        ConfigError, match="YUPNOPE_SECOND_FACTOR must be one of optional, required"
    ):
        app_factory(second_factor="always")


@pytest.fixture
def portal(app_factory: Callable[..., Flask]) -> Flask:
    app = app_factory(**PORTAL, access=RULES)
    add_user(app, "alice")
    return app


def check(client: FlaskClient, url: str, **headers: str) -> Any:
    """Ask as nginx's auth_request does, about ``url``."""
    return client.get("/auth/request", headers={"X-Original-URL": url, **headers})


def test_two_factor_rules_let_in_only_a_login_that_proved_one(portal: Flask) -> None:
    browser = browser_of(portal)
    login(browser, "alice")
    assert check(browser, "https://notes.example.com/").status_code == 200
    asked = check(browser, "https://vault.example.com/", Accept="text/html")
    assert asked.status_code == 401
    assert asked.headers["Location"].startswith("https://login.example.com/login?rd=")
    # The portal sends her to set one up, and back after.
    led = browser.get("/login?rd=https://vault.example.com/")
    assert led.headers["Location"] == "/account/totp?rd=https://vault.example.com/"
    assert "asks for a second factor" in browser.get(led.headers["Location"]).text
    headers = {**SAME_ORIGIN}
    browser.post("/account/totp", headers=headers, data={"rd": "https://vault.example.com/"})
    secret = re.search(r'id="secret">([A-Z2-7]+)<', browser.get("/account/totp").text)
    assert secret is not None
    codes = browser.post(
        "/account/totp/confirm",
        headers=headers,
        data={"code": now_code(secret[1]), "rd": "https://vault.example.com/"},
    )
    assert 'href="https://vault.example.com/"' in codes.text
    assert check(browser, "https://vault.example.com/").status_code == 200
    # A new login asks for the code, and lets in at once.
    again = browser_of(portal)
    login(again, "alice")
    assert check(again, "https://vault.example.com/").status_code == 401
    again.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": now_code(secret[1], 1)})
    assert check(again, "https://vault.example.com/").status_code == 200


def test_a_personal_token_never_passes_a_two_factor_rule(portal: Flask) -> None:
    client = browser_of(portal)
    headers = bearer(api_login(client).json["token"])
    script = client.post(f"{API}/me/tokens", headers=headers, json={"name": "backup"})
    token = bearer(script.json["secret"])["Authorization"]
    assert check(client, "https://notes.example.com/", Authorization=token).status_code == 200
    assert check(client, "https://vault.example.com/", Authorization=token).status_code == 401


def test_a_required_second_factor_keeps_a_browser_out_of_every_app_until_set_up(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(**PORTAL, access=RULES, second_factor="required")
    add_user(app, "alice")
    browser = browser_of(app)
    login(browser, "alice")
    assert check(browser, "https://notes.example.com/").status_code == 401


# The operator.


def test_the_operator_resets_a_users_second_factors(
    enrolled: tuple[Flask, str, list[str]], runner: CliRunner
) -> None:
    app, _, _ = enrolled
    done = run_cli(runner, "users", "reset-second-factors", "ALICE")
    assert done.exit_code == 0
    assert done.output == "Removed the second factors of 'alice'; they are logged out.\n"
    assert count_rows(app, Session) == 0
    again = run_cli(runner, "users", "reset-second-factors", "alice")
    assert again.output == "User 'alice' had no second factor; they are logged out.\n"
    assert count_rows(app, LoginEvent, kind=EventKind.ADMIN_SECOND_FACTORS_RESET.value) == 2
    assert api_login(app.test_client()).status_code == 201
    unknown = run_cli(runner, "users", "reset-second-factors", "nobody")
    assert_one_line_error(unknown, "No user is named 'nobody'.")
