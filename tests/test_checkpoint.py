"""Test web/checkpoint.py: the common forward-auth check, answered before Flask as Flask answers it.

Each check of the matrix is sent twice, each time on a session of its own in the same state:
through the app, where the checkpoint answers it without Flask running (no ``request_started``),
and to Flask's own WSGI app (``Flask.wsgi_app``, inside every middleware the app is wrapped in),
where web/forward.py's views answer it. The two answers must be the same to the byte (status,
every header in its order, body), and so must what each did to its session: deleted on sight,
touched, or left alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, request_started
from sqlalchemy import select, update
from werkzeug.test import EnvironBuilder

from helpers import CHEAP_ARGON2, GOOD_PASSWORD, SAME_ORIGIN, add_user, browser_of, free_port
from yupnope import create_app, wiring
from yupnope.models import Session, User
from yupnope.security import tokens

#: Run every test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

COOKIE = "yupnope_session"

#: Another site whose pages may call the API (under "basic"), named by every check's Origin.
OTHER_SITE = "https://other.example.org"

#: Rules that let in, deny, ask to sign in (with a second factor too), by group and for all.
RULES = {
    "default_policy": "deny",
    "rules": [
        {"domain": ["public.example.com"], "policy": "bypass"},
        {"domain": ["app.example.com"], "resources": ["^/admin(/|$)"], "policy": "deny"},
        {"domain": ["staff.example.com"], "subject": ["group:staff"], "policy": "signed_in"},
        {"domain": ["staff.example.com"], "policy": "deny"},
        {"domain": ["vault.example.com"], "policy": "two_factor"},
        {"domain": ["*.example.com"], "policy": "signed_in"},
    ],
}

PORTAL = {
    "cookie_domain": "example.com",
    "public_url": "https://login.example.com",
    "access": RULES,
}

#: The servers the matrix runs on: with a public URL and cookie domain or without, a second
#: factor required, Basic credentials taken (and cookies always Secure, and the API open to
#: another site's pages: CORS's hook, which must leave the checks alone).
SETTINGS = {
    "portal": PORTAL,
    "no public URL": {"access": RULES},
    "second factor required": {**PORTAL, "second_factor": "required"},
    "basic": {
        **PORTAL,
        "proxy_basic_auth": True,
        "cookie_secure": "always",
        "cors_origins": OTHER_SITE,
    },
}

#: An allowed page, a denied path, a bypass, a group's app, a two_factor app, an unlisted host.
TARGETS = [
    "https://app.example.com/notes?x=1&y=2",
    "https://app.example.com/admin",
    "https://public.example.com/",
    "https://staff.example.com/",
    "https://vault.example.com/keys",
    "http://other.test/",
]

#: Each method with the scheme the check comes by (http: no HSTS, a removal without Secure).
WAYS = [("GET", "https"), ("HEAD", "https"), ("GET", "http")]

ACCEPTS = ["text/html,application/xhtml+xml", "application/json"]


@dataclass(frozen=True)
class State:
    """Describe a session cookie: whose session, in what state, or a cookie that names none."""

    user: str | None = "alice"
    second_factor: str | None = None
    #: How long ago the session was last seen, and until when it lasts, from now.
    seen: timedelta = timedelta(0)
    lasts: timedelta = timedelta(days=1)
    #: A cookie value that is no session's token, for user=None.
    value: str = ""


STATES = {
    "live": State(),
    "proved a second factor": State(second_factor="totp"),
    "in the staff group": State(user="carol"),
    "disabled user": State(user="bob"),
    "due a touch": State(seen=timedelta(seconds=90)),
    "expired": State(lasts=timedelta(seconds=-1)),
    "idle": State(seen=timedelta(hours=13)),
    "unknown token": State(user=None, value=tokens.new_token()),
    "garbage": State(user=None, value="%00not-a-token&amp;"),
}


@pytest.fixture(params=list(SETTINGS))
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Return one of SETTINGS."""
    chosen: dict[str, Any] = SETTINGS[request.param]
    return chosen


@pytest.fixture
def server(settings: dict[str, Any], app_factory: Callable[..., Flask]) -> Flask:
    """Return an app on ``settings``, with alice, carol in staff, and bob disabled."""
    return people(app_factory(**settings))


def people(app: Flask) -> Flask:
    """Add alice, carol (in the staff group) and bob (disabled, his sessions kept) to ``app``."""
    for name in ("alice", "bob", "carol"):
        add_user(app, name)
    now = datetime.now(UTC)
    with app.app_context():
        operator = wiring.operator()
        operator.add_group("staff", now)
        operator.change_groups(operator.find("carol"), ["staff"], [], now)
    with wiring.get(app).sessionmaker.begin() as orm:
        # Left with his sessions, as a race with the operator's disable could leave them.
        orm.execute(update(User).where(User.username == "bob").values(disabled=True))
    # The first request of a process prunes, through Flask: out of the way of the matrix.
    assert app.test_client().get("/healthz").status_code == 200
    return app


def cookie_in(app: Flask, state: State) -> str:
    """Return a cookie value for ``state``: a new session's token, or a value naming none."""
    if state.user is None:
        return state.value
    token = tokens.new_token()
    now = datetime.now(UTC)
    with wiring.get(app).sessionmaker.begin() as orm:
        user_id = orm.scalar(select(User.id).where(User.username == state.user))
        orm.add(
            Session(
                token_digest=tokens.digest(token),
                user_id=user_id,
                created_at=now - state.seen,
                last_seen_at=now - state.seen,
                expires_at=now + state.lasts,
                second_factor=state.second_factor,
                authenticated_at=now - state.seen,
            )
        )
    return token


def left_of(app: Flask, token: str) -> str:
    """Return what became of a session: "gone", "touched" or "as it was"."""
    with wiring.get(app).sessionmaker() as orm:
        found = orm.scalars(select(Session).where(Session.token_digest == tokens.digest(token)))
        row = found.first()
    if row is None:
        return "gone"
    return "touched" if row.last_seen_at > row.created_at else "as it was"


def check_environ(path: str, target: str, method: str, scheme: str, **sent: str) -> dict[str, Any]:
    """Return the environ of a proxy's check about ``target``, as nginx or Traefik send it."""
    origin, _, rest = target.partition("://")
    host, _, uri = rest.partition("/")
    headers = (
        {"X-Original-URL": target}
        if path == "/auth/request"
        else {
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Proto": origin,
            "X-Forwarded-Host": host,
            "X-Forwarded-Uri": f"/{uri}",
        }
    )
    return EnvironBuilder(
        path=path,
        method=method,
        base_url=f"{scheme}://{host}",
        headers={**headers, **sent},
    ).get_environ()


@dataclass(frozen=True)
class Answer:
    """Hold a whole WSGI answer, and whether Flask ran to give it."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes
    flask_ran: bool


@pytest.fixture
def flask_runs() -> Iterator[list[object]]:
    """Return the list of apps Flask started a request on, while the test runs."""
    started: list[object] = []

    def note(sender: object, **_: object) -> None:
        started.append(sender)

    with request_started.connected_to(note):
        yield started


def ask(app: Flask, environ: dict[str, Any], flask_runs: list[object], door: str) -> Answer:
    """Send ``environ`` through the whole app (door "app") or to Flask alone (door "flask")."""
    call = app if door == "app" else (lambda env, start: Flask.wsgi_app(app, env, start))
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> None:
        started.append((status, list(headers)))

    before = len(flask_runs)
    result = call(dict(environ), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    if door == "app":
        # The outermost middleware gives every answer its id (web/request_ids.py).
        ids = [header for header in headers if header[0] == "X-Request-Id"]
        assert len(ids) == 1, headers
        headers.remove(ids[0])
    return Answer(status, headers, body, len(flask_runs) > before)


def test_the_checkpoint_answers_as_the_flask_views(
    server: Flask, settings: dict[str, Any], flask_runs: list[object]
) -> None:
    seen = set()
    doors = ("/auth/request", "/auth/forward")
    for case in itertools.product(STATES, doors, TARGETS, WAYS, ACCEPTS):
        name, path, target, (method, scheme), accept = case
        state = STATES[name]
        answers, effects = [], []
        for door in ("flask", "app"):
            token = cookie_in(server, state)
            sent = {"Accept": accept, "Cookie": f"{COOKIE}={token}", "Origin": OTHER_SITE}
            environ = check_environ(path, target, method, scheme, **sent)
            answers.append(ask(server, environ, flask_runs, door))
            effects.append(left_of(server, token) if state.user else "none")
        flask, early = answers
        assert flask.flask_ran and not early.flask_ran, case
        assert (early.status, early.headers, early.body) == (
            flask.status,
            flask.headers,
            flask.body,
        ), case
        assert effects[0] == effects[1], case
        seen.add((flask.status[:3], effects[0]))
    # Every answer and every fate of a session came up, so the comparison covered each.
    statuses = {status for status, _ in seen}
    assert statuses >= {"200", "401", "403"} | ({"302"} if "public_url" in settings else set())
    assert {effect for _, effect in seen} == {"gone", "touched", "as it was", "none"}


def nginx_check(url: str, cookie: str, **sent: str) -> dict[str, Any]:
    """Return the environ of nginx's check about ``url`` with the session cookie ``cookie``."""
    return check_environ("/auth/request", url, "GET", "https", Cookie=f"{COOKIE}={cookie}", **sent)


@pytest.mark.parametrize(
    ("path", "method", "sent"),
    [
        # Another method: a proxy checking a form's POST.
        ("/auth/request", "POST", {}),
        # Credentials of another kind, even empty: the views read them.
        ("/auth/request", "GET", {"Authorization": "Bearer not-a-token"}),
        ("/auth/forward", "GET", {"Authorization": ""}),
        ("/auth/forward", "GET", {"Authorization": "Basic YWxpY2U6d3Jvbmc="}),
        # Two session cookies (a host's own beside the cookie domain's), or an empty one.
        ("/auth/request", "GET", {"Cookie": f"{COOKIE}=one; {COOKIE}=two"}),
        ("/auth/request", "GET", {"Cookie": f"{COOKIE}="}),
        ("/auth/request", "GET", {"Cookie": "other=1"}),
        # No original request to speak of: the views' 400.
        ("/auth/request", "GET", {"X-Original-URL": ""}),
        ("/auth/forward", "GET", {"X-Forwarded-Host": ""}),
        ("/auth/forward", "GET", {"X-Forwarded-Uri": "notes"}),
        # Not quite the check's path: the URL map's answers.
        ("/auth/request/", "GET", {}),
        ("//auth/request", "GET", {}),
    ],
)
def test_anything_unusual_goes_on_to_flask(
    server: Flask, flask_runs: list[object], path: str, method: str, sent: dict[str, str]
) -> None:
    token = cookie_in(server, STATES["live"])
    door = "/auth/request" if path.endswith("request") else "/auth/forward"
    environ = check_environ(
        door, TARGETS[0], method, "https", **{"Cookie": f"{COOKIE}={token}", **sent}
    )
    environ["PATH_INFO"] = path
    through_app = ask(server, environ, flask_runs, "app")
    assert through_app.flask_ran
    flask = ask(server, environ, flask_runs, "flask")
    assert (through_app.status, through_app.headers, through_app.body) == (
        flask.status,
        flask.headers,
        flask.body,
    )


def test_the_first_check_of_a_process_goes_through_flask_which_prunes(
    app_factory: Callable[..., Flask], flask_runs: list[object]
) -> None:
    app = app_factory(**PORTAL)
    add_user(app, "alice")
    token = cookie_in(app, STATES["live"])
    assert ask(app, nginx_check(TARGETS[0], token), flask_runs, "app").flask_ran
    assert wiring.get(app).next_prune > 0
    assert not ask(app, nginx_check(TARGETS[0], token), flask_runs, "app").flask_ran


def test_an_outage_goes_on_to_flask_and_its_503(instance: Any, flask_runs: list[object]) -> None:
    # One database that never answers is enough: the test asks for no database_url, so it
    # runs once, not on SQLite and PostgreSQL both.
    app = create_app(
        {
            "instance_path": str(instance),
            "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone",
            "database_timeout_seconds": 1,
            **CHEAP_ARGON2,
        }
    )
    try:
        app.test_client().get("/healthz")
        answer = ask(app, nginx_check(TARGETS[0], tokens.new_token()), flask_runs, "app")
    finally:
        wiring.get(app).engine.dispose()
    assert answer.flask_ran
    assert answer.status.startswith("503")
    assert b"not answering" in answer.body


@pytest.fixture
def pair(app_factory: Callable[..., Flask]) -> tuple[Flask, Flask]:
    """Return two apps on one database with the portal's rules, where alice has an account.

    Each stands for another worker or instance; only the database is shared.
    """
    first = app_factory(**PORTAL)
    add_user(first, "alice")
    second = app_factory(**PORTAL)
    assert second.test_client().get("/healthz").status_code == 200
    return first, second


def logged_in(app: Flask) -> tuple[Any, str]:
    """Log alice in through ``app``'s form; return the browser and its session cookie."""
    browser = browser_of(app)
    form = {"username": "alice", "password": GOOD_PASSWORD}
    assert browser.post("/login", data=form, headers=SAME_ORIGIN).status_code == 303
    cookie = browser.get_cookie(COOKIE, domain="example.com")
    assert cookie is not None
    return browser, cookie.value


def test_a_logout_elsewhere_is_refused_at_the_next_check(
    pair: tuple[Flask, Flask], flask_runs: list[object]
) -> None:
    first, second = pair
    browser, token = logged_in(first)
    allowed = ask(second, nginx_check(TARGETS[0], token), flask_runs, "app")
    assert allowed.status.startswith("200") and not allowed.flask_ran
    assert browser.post("/logout", headers=SAME_ORIGIN).status_code == 303
    refused = ask(second, nginx_check(TARGETS[0], token), flask_runs, "app")
    assert refused.status.startswith("401") and not refused.flask_ran
    removal = [value for name, value in refused.headers if name == "Set-Cookie"]
    assert removal and all("Max-Age=0" in value for value in removal)


@pytest.mark.parametrize("change", ["disable", "remove", "set-password"])
def test_an_operators_change_is_refused_at_the_next_check(
    pair: tuple[Flask, Flask], flask_runs: list[object], change: str
) -> None:
    first, second = pair
    _, token = logged_in(first)
    assert ask(second, nginx_check(TARGETS[0], token), flask_runs, "app").status.startswith("200")
    now = datetime.now(UTC)
    with first.app_context():
        operator = wiring.operator()
        alice = operator.find("alice")
        if change == "disable":
            operator.set_disabled(alice, True, now)
        elif change == "remove":
            operator.remove_user(alice, now)
        else:
            operator.set_password(alice, "a brand new pass phrase", now)
    refused = ask(second, nginx_check(TARGETS[0], token), flask_runs, "app")
    assert refused.status.startswith("401") and not refused.flask_ran


def test_a_disabled_user_is_refused_even_with_a_session_left(
    pair: tuple[Flask, Flask], flask_runs: list[object]
) -> None:
    first, second = pair
    _, token = logged_in(first)
    with wiring.get(first).sessionmaker.begin() as orm:
        orm.execute(update(User).where(User.username == "alice").values(disabled=True))
    refused = ask(second, nginx_check(TARGETS[0], token), flask_runs, "app")
    assert refused.status.startswith("401") and not refused.flask_ran


def test_a_group_change_holds_at_the_next_check(
    pair: tuple[Flask, Flask], flask_runs: list[object]
) -> None:
    first, second = pair
    _, token = logged_in(first)
    staff = "https://staff.example.com/"

    def status() -> str:
        answer = ask(second, nginx_check(staff, token), flask_runs, "app")
        assert not answer.flask_ran
        return answer.status[:3]

    assert status() == "403"
    now = datetime.now(UTC)
    with first.app_context():
        operator = wiring.operator()
        operator.add_group("staff", now)
        operator.change_groups(operator.find("alice"), ["staff"], [], now)
    assert status() == "200"
    with first.app_context():
        operator = wiring.operator()
        operator.change_groups(operator.find("alice"), [], ["staff"], now)
    assert status() == "403"


def test_the_touch_is_written_once_per_interval(
    app_factory: Callable[..., Flask], flask_runs: list[object]
) -> None:
    app = people(app_factory(**PORTAL))
    token = cookie_in(app, STATES["due a touch"])

    def last_seen() -> datetime:
        with wiring.get(app).sessionmaker() as orm:
            found = orm.scalar(
                select(Session.last_seen_at).where(Session.token_digest == tokens.digest(token))
            )
        assert found is not None and found.tzinfo is not None
        return found

    before = last_seen()
    assert not ask(app, nginx_check(TARGETS[0], token), flask_runs, "app").flask_ran
    touched = last_seen()
    assert touched - before >= timedelta(seconds=90)
    assert not ask(app, nginx_check(TARGETS[0], token), flask_runs, "app").flask_ran
    assert last_seen() == touched
