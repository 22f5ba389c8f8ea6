"""Guard requests: who is logged in, who may see a page, where to go next, and who may post.

Cross-origin posts are refused by Fetch Metadata, as Go 1.25's CrossOriginProtection and OWASP's
CSRF cheat sheet describe, so plain same-site forms need no hidden token.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.wrappers.response import Response

from .. import sessions, wiring
from ..client import Client
from ..sessions import Started
from ..snapshots import SessionSnapshot, UserSnapshot
from .answers import CHECK_PREFIX, for_api
from .cookies import CHALLENGE_COOKIE, DEVICE_COOKIE, PASSKEY_COOKIE, ServerSession

P = ParamSpec("P")
R = TypeVar("R")

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Refuse cross-origin unsafe requests before any view runs."""
    app.before_request(refuse_cross_origin)


def now() -> datetime:
    """Return the current aware UTC time."""
    return datetime.now(UTC)


def client() -> Client:
    """Describe the client of this request for the event log."""
    return Client.of(request.remote_addr, request.headers.get("User-Agent"))


def _server_session() -> ServerSession:
    current = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(current, ServerSession):
        raise RuntimeError("the server-side session interface is not installed")
    return current


def current() -> tuple[SessionSnapshot, UserSnapshot] | None:
    """Return this request's session row and user, looked up once, or None when anonymous."""
    if "yupnope_current" not in g:
        g.yupnope_current = _server_session().look_up(
            lambda token: wiring.sessions().find(token, now())
        )
    found_now: tuple[SessionSnapshot, UserSnapshot] | None = g.yupnope_current
    return found_now


def signed_in() -> tuple[SessionSnapshot, UserSnapshot]:
    """Return this request's session row and user, in a view that login_required guards."""
    found = current()
    if found is None:
        raise RuntimeError("signed_in() is for views behind login_required")
    return found


def current_user() -> UserSnapshot | None:
    """Return the logged-in user, or None."""
    found = current()
    return None if found is None else found[1]


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Send anonymous visitors to the login form, remembering where they were going."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if current() is None:
            # Only a page can be gone back to: a form's target answers GET with 405.
            wanted = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("pages.login_form", next=wanted))
        return view(*args, **kwargs)

    return wrapped


def cookie_token() -> str | None:
    """Return the session token this browser sent, unchecked: a new login ends its session.

    Read without a lookup, so a login pays no query before its hashing slot and throttle.
    """
    return _server_session().token


def sign_in(started: Started) -> None:
    """Give the browser the cookie of a new session, once it is committed.

    A login starts its session inside its own transaction and hands it in once that is
    committed, so no cookie names a session that was rolled back. What this request found
    before is forgotten: asked again, ``current`` looks up the new session.
    """
    cookie = _server_session()
    cookie.accessed = True
    cookie.issue(started.token, started.record.expires_at)
    g.pop("yupnope_current", None)


def sign_out() -> None:
    """End this browser's session on the server and remove its cookie."""
    found = current()
    if found is not None:
        wiring.sessions().end(found[0], client(), now())
    _server_session().clear_cookie()
    g.yupnope_current = None


def device_cookie() -> str | None:
    """Return the device cookie this browser sent, if any."""
    return request.cookies.get(DEVICE_COOKIE) or None


def remember_device(value: str) -> None:
    """Send a device cookie with this response (after a successful login)."""
    _server_session().remember_device(value)


def enrolment_due(second_factor: str | None) -> bool:
    """Return whether a session without a second factor must first set one up (the policy)."""
    return sessions.enrolment_due(second_factor, wiring.get().settings.second_factor)


def challenge_cookie() -> str:
    """Return the half-done login's challenge this browser sent, or ""."""
    return request.cookies.get(CHALLENGE_COOKIE, "")


def hold_challenge(token: str, expires_at: datetime) -> None:
    """Give the browser a half-done login's challenge, until ``expires_at``."""
    seconds = max(math.ceil((expires_at - now()).total_seconds()), 1)
    _server_session().hold_challenge(token, seconds)


def drop_challenge() -> None:
    """Remove the half-done login's challenge cookie with this response."""
    _server_session().drop_challenge()


def passkey_cookie() -> str:
    """Return the token that binds this browser's passkey logins, or ""."""
    return request.cookies.get(PASSKEY_COOKIE, "")


def hold_passkey(token: str) -> None:
    """Give the browser the token its passkey login's ceremonies are bound to."""
    _server_session().passkey = token


def drop_passkey() -> None:
    """Remove the passkey login's cookie with this response."""
    _server_session().passkey = ""


def forget_cookie() -> None:
    """Remove the cookie after the server ended this session some other way."""
    _server_session().clear_cookie()
    g.yupnope_current = None


def safe_next_url(target: str | None, default: str) -> str:
    """Return ``target`` when it is a path on this site, else ``default``.

    Only a relative path starting with one slash passes: no scheme, no host, no backslash (which
    browsers read as a slash), no control character, and none of those hidden behind
    percent-encoding, after Django's url_has_allowed_host_and_scheme.
    """
    if not target or not target.startswith("/") or len(target) > 2048:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return default
    if target.startswith("//") or target.lower().startswith(("/%2f", "/%5c")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


#: The OpenID Connect endpoints apps call with their own credentials, never a cookie: a public
#: client's page calls them from its own origin.
BACK_CHANNEL = frozenset({"oidc.token", "oidc.revoke", "oidc.introspect", "oidc.userinfo"})


def refuse_cross_origin() -> None:
    """Refuse an unsafe request that a browser says came from another site (403).

    Two kinds of API request pass: those with an Authorization header, since a browser sends
    one cross-origin only after a CORS preflight this server answered, and those from an origin
    the operator listed in CORS_ORIGINS. The API never reads the cookie of either.
    """
    if request.method not in _UNSAFE_METHODS or request.path.startswith(CHECK_PREFIX):
        return
    if request.endpoint in BACK_CHANNEL:
        return
    if for_api() and (
        "Authorization" in request.headers or request.headers.get("Origin") in cors_origins()
    ):
        return
    if from_other_site():
        abort(403, "This form was sent from another site, so it was refused.")


def from_other_site() -> bool:
    """Return whether a browser says this request was made by a page of another origin.

    Sec-Fetch-Site is believed first; without it, Origin is compared with the host; with
    neither, the client is not a browser, or one too old to send them, and SameSite=Lax holds.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    try:
        origin_host = urlsplit(origin).netloc
    except ValueError:
        # An Origin no browser would send ("http://[::1") names no host, so not this one.
        origin_host = ""
    return origin_host != request.host


def cors_origins() -> frozenset[str]:
    """Return the other sites' origins whose pages may call the API."""
    return wiring.get().settings.allowed_origins
