"""Test every HTML route of the contract, happy and failing, through Flask's test client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, Response, request_finished
from flask.testing import FlaskClient

from helpers import (
    CHEAP_ARGON2,
    COOKIE,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    SAME_ORIGIN,
    add_user,
    count_users,
    headers_alike,
    login,
    operator_acts_during_hash_check,
)
from yupnope import create_app, wiring
from yupnope.cli.import_file import parse_import_file

# Helpers


@dataclass
class Form:
    """Hold one <form>'s attributes and the attributes of the inputs inside it."""

    attrs: dict[str, str]
    inputs: list[dict[str, str]] = field(default_factory=list)

    def input(self, name: str) -> dict[str, str]:
        """Return the attributes of the input called ``name``."""
        found = [i for i in self.inputs if i.get("name") == name]
        assert len(found) == 1, f"no single input {name!r} in {self.inputs}"
        return found[0]


class Page(HTMLParser):
    """Parse an HTML page into its forms, links and images, whatever the attribute order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self._open: Form | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = Form(values)
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None:
            self._open.inputs.append(values)
        elif tag == "a":
            self.links.append(values.get("href", ""))
        elif tag == "img":
            self.images.append(values.get("src", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None

    def form(self, action: str) -> Form:
        """Return the one form that posts to ``action``."""
        found = [f for f in self.forms if f.attrs.get("action") == action]
        assert len(found) == 1, f"no single form to {action!r} in {[f.attrs for f in self.forms]}"
        assert found[0].attrs.get("method", "").lower() == "post"
        return found[0]


def page(response: Any) -> Page:
    """Parse a response's HTML."""
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def session_cookie(response: Any) -> dict[str, str]:
    """Return the session cookie a response sets: its value and its attributes, lower-cased."""
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert len(headers) == 1, response.headers
    first, *rest = (part.strip() for part in headers[0].split(";"))
    attributes = {"value": first.partition("=")[2]}
    for part in rest:
        key, _, value = part.partition("=")
        attributes[key.lower()] = value
    return attributes


def token_of(client: FlaskClient) -> str:
    """Return the session token the client holds."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.value
    return cookie.value


def with_token(app: Flask, token: str) -> FlaskClient:
    """Return a fresh client that presents ``token``, as a copy of a stolen cookie would."""
    fresh = app.test_client()
    fresh.set_cookie(COOKIE, token)
    return fresh


def location(response: Any) -> str:
    """Return where a redirect goes (path and query)."""
    assert response.status_code in (302, 303), response.status
    return str(response.headers["Location"])


def logged_in_as(client: FlaskClient) -> str | None:
    """Return the name /yup greets, or None when /yup sends the client away."""
    response = client.get("/yup")
    if response.status_code == 302:
        return None
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    return text.split("Yup, you are in, ", 1)[1].split("!</h1>", 1)[0]


def signup(client: FlaskClient, username: str, password: str = GOOD_PASSWORD) -> Any:
    """Post the sign-up form like a same-site browser would."""
    return client.post(
        "/signup", data={"username": username, "password": password}, headers=SAME_ORIGIN
    )


def logged_in_client(app: Flask, username: str = "alice") -> FlaskClient:
    """Return a client logged in as ``username`` (the user must exist)."""
    client = app.test_client()
    assert location(login(client, username)) == "/yup"
    return client


@pytest.fixture(autouse=True)
def _no_server_errors() -> Iterator[None]:
    """Fail any test in which any app answered 500, even with a page of its own."""
    statuses: list[int] = []

    def record(sender: Flask, response: Response, **_extra: Any) -> None:
        statuses.append(response.status_code)

    request_finished.connect(record, weak=False)
    yield
    request_finished.disconnect(record)
    assert 500 not in statuses


@pytest.fixture
def alice(app: Flask) -> str:
    """Create the user alice with the good password and return her name."""
    add_user(app, "alice")
    return "alice"


# The login form


@pytest.mark.parametrize("path", ["/", "/login"])
def test_login_form_posts_username_and_password(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    form = page(response).form("/login")
    # "webauthn": the browser's autofill offers the account's passkeys there too.
    assert form.input("username")["autocomplete"] == "username webauthn"
    assert form.input("password")["autocomplete"] == "current-password"
    assert form.input("password")["type"] == "password"


def test_login_form_links_to_signup(client: FlaskClient) -> None:
    assert "/signup" in page(client.get("/")).links


# Logging in


def test_login_redirects_to_yup_with_a_session_cookie(client: FlaskClient, alice: str) -> None:
    response = login(client, alice)
    assert response.status_code == 303
    assert location(response) == "/yup"
    cookie = session_cookie(response)
    assert len(cookie["value"]) >= 32
    assert "httponly" in cookie
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert "secure" not in cookie
    assert logged_in_as(client) == "alice"


def test_login_ignores_the_case_of_the_name(client: FlaskClient, alice: str) -> None:
    assert location(login(client, "ALICE")) == "/yup"
    assert logged_in_as(client) == "alice"


def test_cookie_is_secure_when_the_setting_says_always(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(cookie_secure="always")
    add_user(app, "alice")
    assert "secure" in session_cookie(login(app.test_client(), "alice"))


def test_cookie_is_secure_in_auto_mode_over_https(client: FlaskClient, alice: str) -> None:
    response = client.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        headers=SAME_ORIGIN,
        base_url="https://localhost",
    )
    assert location(response) == "/yup"
    assert "secure" in session_cookie(response)


def test_cookie_is_never_secure_when_the_setting_says_never(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(cookie_secure="never")
    add_user(app, "alice")
    response = app.test_client().post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        headers=SAME_ORIGIN,
        base_url="https://localhost",
    )
    assert "secure" not in session_cookie(response)


def test_every_login_issues_a_new_token_and_ends_the_old_one(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    login(client, alice)
    first = token_of(client)
    login(client, alice)
    second = token_of(client)
    assert first != second
    assert logged_in_as(client) == "alice"
    assert logged_in_as(with_token(app, first)) is None
    assert logged_in_as(with_token(app, second)) == "alice"


def test_a_planted_token_is_replaced_at_login(app: Flask, alice: str) -> None:
    client = with_token(app, "planted-by-an-attacker")
    login(client, alice)
    assert token_of(client) != "planted-by-an-attacker"
    assert logged_in_as(with_token(app, "planted-by-an-attacker")) is None


def test_unknown_user_and_wrong_password_answer_byte_for_byte_alike(
    client: FlaskClient, alice: str
) -> None:
    unknown = login(client, "mallory", GOOD_PASSWORD)
    wrong = login(client, "alice", GOOD_PASSWORD + "!")
    assert unknown.status == wrong.status == "303 SEE OTHER"
    assert headers_alike(unknown) == headers_alike(wrong)
    assert unknown.get_data() == wrong.get_data()
    assert location(wrong) == "/nope"
    assert "Set-Cookie" not in wrong.headers


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"username": "alice"},
        {"password": GOOD_PASSWORD},
        {"username": "", "password": GOOD_PASSWORD},
        {"username": "alice", "password": ""},
        {"username": "", "password": ""},
        {"username": "a" * 10_000, "password": GOOD_PASSWORD},
        {"username": "alice", "password": "a" * 10_000},
        {"username": "alice", "password": GOOD_PASSWORD + "a" * 10_000},
    ],
    ids=[
        "nothing",
        "no-password",
        "no-username",
        "empty-username",
        "empty-password",
        "both-empty",
        "huge-username",
        "huge-password",
        "good-password-made-huge",
    ],
)
def test_bad_login_forms_go_to_nope(client: FlaskClient, alice: str, data: dict[str, str]) -> None:
    response = client.post("/login", data=data, headers=SAME_ORIGIN)
    assert location(response) == "/nope"
    assert "Set-Cookie" not in response.headers
    assert logged_in_as(client) is None


def test_disabled_user_answers_like_a_wrong_password(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    with app.app_context():
        operator = wiring.operator()
        operator.set_disabled(operator.find("alice"), True, datetime.now(UTC))
    disabled = login(client, "alice", GOOD_PASSWORD)
    wrong = login(client, "alice", "not the password")
    assert location(disabled) == "/nope"
    assert (disabled.status, headers_alike(disabled), disabled.get_data()) == (
        wrong.status,
        headers_alike(wrong),
        wrong.get_data(),
    )


def test_a_megabyte_of_password_is_refused_with_413(client: FlaskClient, alice: str) -> None:
    response = client.post(
        "/login", data={"username": "alice", "password": "x" * 1_000_000}, headers=SAME_ORIGIN
    )
    assert response.status_code == 413
    assert "larger than this server accepts" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


MULTIPART_NOT_UTF8 = (
    b"--b\r\n"
    b'Content-Disposition: form-data; name="username"\r\n\r\n'
    b"\xff\xfe\r\n"
    b"--b\r\n"
    b'Content-Disposition: form-data; name="password"\r\n\r\n'
    b"correct horse battery staple\r\n"
    b"--b--\r\n"
)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"username=%FF%FE&password=whatever1234", "application/x-www-form-urlencoded"),
        (b"username=alice&password=%C3", "application/x-www-form-urlencoded"),
        (b"username=\xff\xfe&password=whatever1234", "application/x-www-form-urlencoded"),
        (MULTIPART_NOT_UTF8, "multipart/form-data; boundary=b"),
    ],
    ids=["percent-encoded", "truncated-sequence", "raw-bytes", "multipart"],
)
@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_a_form_that_is_not_utf8_gets_400_with_a_message(
    app: Flask, client: FlaskClient, path: str, body: bytes, content_type: str
) -> None:
    response = client.post(path, data=body, content_type=content_type, headers=SAME_ORIGIN)
    assert response.status_code == 400
    assert "not sent as UTF-8" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert count_users(app) == 0


def test_a_bad_next_field_is_refused_before_the_login_happens(
    client: FlaskClient, alice: str
) -> None:
    body = f"username=alice&password={GOOD_PASSWORD}&next=/%FF".encode()
    response = client.post(
        "/login", data=body, content_type="application/x-www-form-urlencoded", headers=SAME_ORIGIN
    )
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers


def test_non_ascii_and_literal_percent_text_are_ordinary_text(
    app: Flask, client: FlaskClient
) -> None:
    assert location(signup(client, "Zoë 100%FF")) == "/yup"
    assert logged_in_as(client) == "Zoë 100%FF"
    other = app.test_client()
    assert location(login(other, "zoë 100%ff")) == "/yup"


# Where a login goes next


def test_login_follows_a_same_site_next(client: FlaskClient, alice: str) -> None:
    sent_away = client.get("/account")
    target = urlsplit(location(sent_away))
    assert target.path == "/"
    assert parse_qs(target.query) == {"next": ["/account"]}
    form = page(client.get(location(sent_away))).form("/login")
    assert form.input("next")["value"] == "/account"
    response = client.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "next": "/account"},
        headers=SAME_ORIGIN,
    )
    assert location(response) == "/account"
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize(
    "target",
    ["//evil.com", "https://evil.com", "/\\evil.com", "http:/evil.com", "javascript:alert(1)"],
)
def test_login_ignores_an_unsafe_next(client: FlaskClient, alice: str, target: str) -> None:
    response = client.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD, "next": target},
        headers=SAME_ORIGIN,
    )
    assert location(response) == "/yup"


def test_a_post_only_page_is_not_remembered_as_next(client: FlaskClient) -> None:
    response = client.post("/account/password", headers=SAME_ORIGIN)
    assert location(response) == "/"


# /yup and /nope


def test_yup_greets_the_user_with_account_link_and_logout(client: FlaskClient, alice: str) -> None:
    login(client, alice)
    response = client.get("/yup")
    assert response.status_code == 200
    assert "alice" in response.get_data(as_text=True)
    parsed = page(response)
    assert "/account" in parsed.links
    parsed.form("/logout")
    assert "/static/yup.svg" in parsed.images


def test_links_follow_the_script_root_each_request_is_served_under(
    client: FlaskClient, alice: str
) -> None:
    """The templates' links are built once per script root, so each mount gets its own."""
    login(client, alice)
    for root in ("", "/a", "/b", "", "/a"):
        parsed = page(client.get("/yup", base_url=f"http://localhost{root}"))
        assert f"{root}/account" in parsed.links
        parsed.form(f"{root}/logout")
        assert f"{root}/static/yup.svg" in parsed.images


def test_yup_escapes_the_name(client: FlaskClient) -> None:
    signup(client, "<b>bold</b>")
    text = client.get("/yup").get_data(as_text=True)
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<b>bold</b>" not in text


def test_yup_sends_an_anonymous_visitor_to_the_form(client: FlaskClient) -> None:
    assert location(client.get("/yup")) == "/"


def test_nope_shows_the_picture_and_the_way_back(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 200
    parsed = page(response)
    assert "/static/nope.svg" in parsed.images
    assert "/" in parsed.links


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/static/yup.svg", "image/svg+xml"),
        ("/static/nope.svg", "image/svg+xml"),
        ("/static/style.css", "text/css"),
    ],
)
def test_pictures_and_stylesheet_are_served(client: FlaskClient, path: str, mimetype: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    response.close()


# Logging out


def test_logout_ends_the_session_on_the_server(app: Flask, client: FlaskClient, alice: str) -> None:
    login(client, alice)
    stolen = token_of(client)
    response = client.post("/logout", headers=SAME_ORIGIN)
    assert location(response) == "/"
    assert session_cookie(response)["value"] == ""
    assert logged_in_as(client) is None
    assert logged_in_as(with_token(app, stolen)) is None


def test_logout_when_anonymous_still_goes_to_the_form(client: FlaskClient) -> None:
    assert location(client.post("/logout", headers=SAME_ORIGIN)) == "/"


def test_logout_everywhere_ends_every_session_of_the_user(app: Flask, alice: str) -> None:
    add_user(app, "bob")
    here, there, bob = logged_in_client(app), logged_in_client(app), logged_in_client(app, "bob")
    response = here.post("/account/logout-everywhere", headers=SAME_ORIGIN)
    assert location(response) == "/"
    assert session_cookie(response)["value"] == ""
    assert logged_in_as(here) is None
    assert logged_in_as(there) is None
    assert logged_in_as(bob) == "bob"


def test_disabling_a_user_ends_the_session(app: Flask, alice: str) -> None:
    client = logged_in_client(app)
    token = token_of(client)
    with app.app_context():
        operator = wiring.operator()
        operator.set_disabled(operator.find("alice"), True, datetime.now(UTC))
    assert logged_in_as(with_token(app, token)) is None
    assert logged_in_as(client) is None
    with app.app_context():
        operator = wiring.operator()
        operator.set_disabled(operator.find("alice"), False, datetime.now(UTC))
    assert logged_in_as(with_token(app, token)) is None


# Signing up


def test_signup_form(client: FlaskClient) -> None:
    response = client.get("/signup")
    assert response.status_code == 200
    form = page(response).form("/signup")
    assert form.input("username")["autocomplete"] == "username"
    assert form.input("password")["autocomplete"] == "new-password"


def test_signup_form_answers_head_without_signing_up(app: Flask, client: FlaskClient) -> None:
    response = client.head("/signup")
    assert response.status_code == 200
    assert count_users(app) == 0


def test_signup_creates_the_account_and_logs_in(app: Flask, client: FlaskClient) -> None:
    response = signup(client, "carol")
    assert location(response) == "/yup"
    assert "httponly" in session_cookie(response)
    assert logged_in_as(client) == "carol"
    assert location(login(app.test_client(), "carol")) == "/yup"


@pytest.mark.parametrize("again", ["alice", "Alice", "ALICE", "ａｌｉｃｅ", "al\u0131\u0307ce"])
def test_signup_refuses_a_taken_name(
    app: Flask, client: FlaskClient, alice: str, again: str
) -> None:
    response = signup(client, again, "some other pass phrase")
    assert response.status_code == 409
    assert "is taken" in response.get_data(as_text=True)
    form = page(response).form("/signup")
    assert form.input("username")["value"] == again
    assert "Set-Cookie" not in response.headers
    assert count_users(app) == 1
    assert location(login(client, "alice", GOOD_PASSWORD)) == "/yup"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("carol", "short", "at least 8 characters"),
        ("carol", "password1", "most common"),
        ("carol", "PASSWORD1", "most common"),
        ("carolina lee", "Carolina Lee", "may not be the account"),
        ("carol", "x" * 257, "at most 256"),
    ],
    ids=["too-short", "common", "common-any-case", "the-name", "too-long"],
)
def test_signup_refuses_a_weak_password(
    app: Flask, client: FlaskClient, username: str, password: str, message: str
) -> None:
    response = signup(client, username, password)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    page(response).form("/signup")
    assert count_users(app) == 0


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("", "Choose a name"),
        ("   ", "Choose a name"),
        ("a" * 65, "at most 64"),
        ("al\x07ice", "control, invisible"),
        ("al\u200bice", "control, invisible"),
        ("al\tice", "control, invisible"),
        ("al  ice", "two spaces"),
        ("\u0430lice", "mixes letters of several scripts (Cyrillic and Latin)"),
        ("bob\u2665", "may not contain symbols such as"),
    ],
    ids=[
        "empty",
        "blank",
        "65-chars",
        "bell",
        "zero-width-space",
        "tab",
        "double-space",
        "mixed-scripts",
        "symbol",
    ],
)
def test_signup_refuses_an_invalid_name(
    app: Flask, client: FlaskClient, username: str, message: str
) -> None:
    response = signup(client, username)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count_users(app) == 0


def test_signup_accepts_a_64_character_name(app: Flask, client: FlaskClient) -> None:
    assert location(signup(client, "a" * 64)) == "/yup"
    assert count_users(app) == 1


def test_signup_closed_refuses_get_and_post(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(signup_open=False)
    client = app.test_client()
    shown = client.get("/signup")
    assert shown.status_code == 403
    assert "Sign-up is closed" in shown.get_data(as_text=True)
    assert not any(f.attrs.get("action") == "/signup" for f in page(shown).forms)
    posted = signup(client, "carol")
    assert posted.status_code == 403
    assert "Set-Cookie" not in posted.headers
    assert count_users(app) == 0


# The account page


def test_account_page_needs_a_login(client: FlaskClient) -> None:
    target = urlsplit(location(client.get("/account")))
    assert target.path == "/"
    assert parse_qs(target.query) == {"next": ["/account"]}


@pytest.mark.parametrize(
    "path", ["/account/password", "/account/logout-everywhere", "/account/delete"]
)
def test_account_actions_need_a_login(app: Flask, client: FlaskClient, path: str) -> None:
    add_user(app, "alice")
    response = client.post(
        path,
        data={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
        headers=SAME_ORIGIN,
    )
    assert urlsplit(location(response)).path == "/"
    assert count_users(app) == 1
    assert location(login(client, "alice", GOOD_PASSWORD)) == "/yup"


def test_account_page_has_its_three_forms(app: Flask, alice: str) -> None:
    response = logged_in_client(app).get("/account")
    assert response.status_code == 200
    parsed = page(response)
    change = parsed.form("/account/password")
    assert change.input("current_password")["autocomplete"] == "current-password"
    assert change.input("new_password")["autocomplete"] == "new-password"
    assert change.input("username")["autocomplete"] == "username"
    parsed.form("/account/logout-everywhere")
    assert parsed.form("/account/delete").input("password")["autocomplete"] == "current-password"


def change_password(client: FlaskClient, current: str, new: str) -> Any:
    """Post the change-password form."""
    return client.post(
        "/account/password",
        data={"current_password": current, "new_password": new},
        headers=SAME_ORIGIN,
    )


def test_change_password_needs_the_current_one(app: Flask, alice: str) -> None:
    client = logged_in_client(app)
    response = change_password(client, "not the password", NEW_PASSWORD)
    assert response.status_code == 403
    assert "current password is not right" in response.get_data(as_text=True)
    assert location(login(app.test_client(), "alice", GOOD_PASSWORD)) == "/yup"
    assert location(login(app.test_client(), "alice", NEW_PASSWORD)) == "/nope"


@pytest.mark.parametrize(
    ("new", "message"),
    [("short", "at least 8"), ("password1", "most common"), ("Alice", "at least 8")],
)
def test_change_password_refuses_a_weak_new_one(
    app: Flask, alice: str, new: str, message: str
) -> None:
    client = logged_in_client(app)
    response = change_password(client, GOOD_PASSWORD, new)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert location(login(app.test_client(), "alice", GOOD_PASSWORD)) == "/yup"


def test_change_password_ends_the_other_sessions_only(app: Flask, alice: str) -> None:
    here, there = logged_in_client(app), logged_in_client(app)
    response = change_password(here, GOOD_PASSWORD, NEW_PASSWORD)
    assert location(response) == "/account?done=password"
    assert "password was changed" in here.get(location(response)).get_data(as_text=True)
    assert logged_in_as(here) == "alice"
    assert logged_in_as(there) is None
    assert location(login(app.test_client(), "alice", GOOD_PASSWORD)) == "/nope"
    assert location(login(app.test_client(), "alice", NEW_PASSWORD)) == "/yup"


def test_an_operators_reset_during_a_password_change_wins(
    app: Flask, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refuse a change checked against the old password once the operator has set a new one.

    The attacker with a stolen session types the right current password; the operator's
    ``users set-password`` commits while it is checked. The attacker's password must not win.
    """
    client = logged_in_client(app)
    operator_acts_during_hash_check(monkeypatch, app, "alice", "set-password")
    response = change_password(client, GOOD_PASSWORD, NEW_PASSWORD)
    assert location(response) == "/"
    assert "yupnope_session=;" in response.headers["Set-Cookie"]
    assert location(login(app.test_client(), "alice", NEW_PASSWORD)) == "/nope"
    operators = "an operator's new passphrase"
    assert location(login(app.test_client(), "alice", operators)) == "/yup"


@pytest.mark.parametrize(
    ("path", "field"),
    [("/account/password", "current_password"), ("/account/delete", "password")],
)
def test_password_checks_on_the_account_page_are_throttled(
    app_factory: Callable[..., Flask], path: str, field: str
) -> None:
    """Guess the password from a logged-in session: after the free failures, the account waits."""
    app = app_factory(throttle_free_failures=1)
    add_user(app, "alice")
    client = logged_in_client(app)
    form = {"current_password": "", "new_password": NEW_PASSWORD, "password": ""}

    def attempt(password: str) -> Any:
        return client.post(path, data={**form, field: password}, headers=SAME_ORIGIN)

    assert attempt("first wrong guess").status_code == 403
    refused = attempt(GOOD_PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert count_users(app) == 1
    assert logged_in_as(client) == "alice"


def test_delete_account_with_a_wrong_password_keeps_it(app: Flask, alice: str) -> None:
    client = logged_in_client(app)
    response = client.post(
        "/account/delete", data={"password": "not the password"}, headers=SAME_ORIGIN
    )
    assert response.status_code == 403
    assert "the account was kept" in response.get_data(as_text=True)
    assert count_users(app) == 1
    assert logged_in_as(client) == "alice"


def test_delete_account_removes_it_and_its_sessions(app: Flask, alice: str) -> None:
    client, other = logged_in_client(app), logged_in_client(app)
    token = token_of(client)
    response = client.post("/account/delete", data={"password": GOOD_PASSWORD}, headers=SAME_ORIGIN)
    assert location(response) == "/?done=deleted"
    assert session_cookie(response)["value"] == ""
    assert "account was deleted" in client.get(location(response)).get_data(as_text=True)
    assert count_users(app) == 0
    assert logged_in_as(with_token(app, token)) is None
    assert logged_in_as(other) is None
    assert location(login(app.test_client(), "alice")) == "/nope"


# Imported weak passwords


def test_an_imported_weak_password_must_be_changed_first(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    file = tmp_path / "users.json"
    file.write_text(json.dumps({"david": {"password": "Baldy1"}}))
    with app.app_context():
        report = wiring.operator().import_users(
            parse_import_file(file), datetime.now(UTC), workers=1
        )
    assert report.must_change == ["david"]

    response = client.post(
        "/login",
        data={"username": "david", "password": "Baldy1", "next": "/yup"},
        headers=SAME_ORIGIN,
    )
    assert location(response) == "/account"
    assert location(client.get("/yup")) == "/account"
    shown = client.get("/account")
    assert "no longer meets" in shown.get_data(as_text=True)
    assert not any(f.attrs.get("action") == "/account/logout-everywhere" for f in page(shown).forms)

    assert location(change_password(client, "Baldy1", NEW_PASSWORD)) == "/account?done=password"
    assert logged_in_as(client) == "david"
    assert location(login(app.test_client(), "david", NEW_PASSWORD)) == "/yup"
    assert location(login(app.test_client(), "david", "Baldy1")) == "/nope"


# Health


def test_healthz_says_ok(client: FlaskClient) -> None:
    for path in ("/healthz", "/healthz/live", "/healthz/ready"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.get_data(as_text=True).strip() == "ok"


def test_healthz_says_503_when_the_database_cannot_be_opened(instance: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    app = create_app({"instance_path": str(instance), "database_url": f"sqlite:///{instance}"})
    app.testing = True
    client = app.test_client()
    # Alive all the same, from the first request on: restarting the process would not bring
    # the database back.
    assert client.get("/healthz/live").status_code == 200
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz/ready").status_code == 503
    assert client.get("/healthz/live").status_code == 200
    # The pages that need the database say so with a page, never a 500.
    response = login(client, "alice")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "not answering" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_healthz_says_503_when_the_database_folder_cannot_exist(instance: Path) -> None:
    app = create_app(
        {
            "instance_path": str(instance),
            "database_url": "sqlite:////proc/nonexistent/x.db",
            **CHEAP_ARGON2,
        }
    )
    app.testing = True
    assert app.test_client().get("/healthz").status_code == 503


# Template overrides

TUTORIAL_LOGIN = """<!doctype html>
<html><body>
<form action="/login" method="post">
<input type="text" name="username"><input type="password" name="password">
<input type="submit" value="Login">
</form>
</body></html>
"""


def test_instance_template_overrides_the_login_form(
    app: Flask, client: FlaskClient, instance: Path, alice: str
) -> None:
    (instance / "templates").mkdir()
    (instance / "templates" / "login.html").write_text(TUTORIAL_LOGIN)
    response = client.get("/")
    assert response.get_data(as_text=True) == TUTORIAL_LOGIN.rstrip("\n")
    form = page(response).form("/login")
    assert {i["name"] for i in form.inputs if "name" in i} == {"username", "password"}
    # A browser posting the plain form sends its Origin and no extra field.
    posted = client.post(
        "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        headers={"Origin": "http://localhost"},
    )
    assert location(posted) == "/yup"
    assert logged_in_as(client) == "alice"
    # The other pages still come from the package.
    assert "/static/nope.svg" in page(client.get("/nope")).images


# Errors


def test_unknown_route_is_a_404_page(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "Nothing here" in text
    assert "not found" in text
    assert "/" in page(response).links


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/logout", {"GET", "HEAD", "POST"}),
        ("GET", "/account/delete", {"POST"}),
        ("PUT", "/yup", {"GET", "HEAD"}),
        ("DELETE", "/signup", {"GET", "HEAD", "POST"}),
    ],
)
def test_wrong_method_is_a_405_page_with_allow(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert "Not that way" in response.get_data(as_text=True)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
