"""Carry the session token in a cookie, through Flask's two-method session interface.

The cookie holds only a random token; everything the session means lives in the database and is
looked up by ``guards`` when a view first asks who is logged in, so requests that never ask (the
stylesheet, the pictures) cost no query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin

from ..config import Settings
from ..second_factors.ceremonies import LIFETIME

T = TypeVar("T")

#: Name of the cookie that marks a browser which logged in to an account before.
DEVICE_COOKIE = "yupnope_device"

#: Name of the cookie that holds a half-done login's challenge, between the password and the
#: second factor; sent to the second step's page alone.
CHALLENGE_COOKIE = "yupnope_second_step"
CHALLENGE_PATH = "/login/second-factor"

#: Name of the cookie that binds a login without a password to the browser that asked for its
#: options (second_factors/ceremonies.py); sent to /login/passkey alone.
PASSKEY_COOKIE = "yupnope_passkey"
PASSKEY_PATH = "/login/passkey"


class ServerSession(dict[str, Any], SessionMixin):
    """Hold the cookie's token and what the request decided about it; the dict stays empty."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token
        self.accessed = False
        #: A new token and its absolute end, to be sent in the response (set at login).
        self.issued: tuple[str, datetime] | None = None
        #: Whether the cookie must be removed (logout, or the token no longer names a session).
        self.cleared = False
        #: A device cookie value to send (set at login).
        self.device: str | None = None
        #: A half-done login's challenge to send and its lifetime in seconds, or "" to remove
        #: the one the browser holds.
        self.challenge: tuple[str, int] | str | None = None
        #: A passkey login's browser token to send, or "" to remove the one the browser holds.
        self.passkey: str | None = None

    def look_up(self, find: Callable[[str], T | None]) -> T | None:
        """Return what ``find`` makes of the cookie's token, or None without a token.

        The answer then depends on the cookie (``Vary: Cookie``), and a token that names
        nothing (ended, expired, never issued) has its cookie removed with the answer.
        """
        self.accessed = True
        found = find(self.token) if self.token else None
        if self.token and found is None:
            self.clear_cookie()
        return found

    def hold_challenge(self, token: str, seconds: int) -> None:
        """Send a half-done login's challenge with this response, for ``seconds``."""
        self.challenge = (token, seconds)

    def drop_challenge(self) -> None:
        """Remove the half-done login's challenge cookie with this response."""
        self.challenge = ""

    def remember_device(self, value: str) -> None:
        """Send ``value`` as the device cookie with this response."""
        self.device = value

    def issue(self, token: str, expires: datetime) -> None:
        """Send ``token`` as the new cookie with this response."""
        self.token = token
        self.issued = (token, expires)
        self.cleared = False

    def clear_cookie(self) -> None:
        """Remove the cookie with this response."""
        self.token = None
        self.issued = None
        self.cleared = True


class ServerSessionInterface(SessionInterface):
    """Read the token from the request's cookie and write any new token or removal back.

    The cookies' names and flags are read from the settings once, when the app is made,
    rather than at every request.
    """

    def __init__(self, settings: Settings) -> None:
        self.name = settings.session_cookie_name
        # Under a cookie domain the session reaches the apps' hosts, for their proxies' checks;
        # the device cookie stays with this host, where logins are.
        self.domain = settings.cookie_domain or None
        self.secure = settings.cookie_secure
        self.device_max_age = settings.device_cookie_days * 86400

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        return ServerSession(request.cookies.get(self.name) or None)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, ServerSession):
            self.write(session, response, request.is_secure)

    def write(self, session: ServerSession, response: Response, https: bool) -> None:
        """Put on ``response`` the cookies ``session`` sends or removes, for a request by ``https``.

        Flask's ``save_session`` for its requests, and web/checkpoint.py's for the checks it
        answers before Flask runs.
        """
        secure = _secure(self.secure, https)
        if session.issued is not None:
            token, expires = session.issued
            response.set_cookie(
                self.name,
                token,
                expires=expires,
                path="/",
                domain=self.domain,
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
        elif session.cleared:
            response.delete_cookie(
                self.name,
                path="/",
                domain=self.domain,
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
        if self.domain and (session.issued is not None or session.cleared):
            # A cookie of this host's alone, from before the cookie domain was set, is another
            # cookie to the browser, sent first: it would shadow the new one, and when found
            # ended, its removal would remove the new one too, at every visit.
            response.delete_cookie(
                self.name, path="/", secure=secure, httponly=True, samesite="Lax"
            )
        if session.device is not None:
            response.set_cookie(
                DEVICE_COOKIE,
                session.device,
                max_age=self.device_max_age,
                path="/",
                secure=secure,
                httponly=True,
                samesite="Lax",
            )
        if isinstance(session.challenge, tuple):
            token, seconds = session.challenge
            response.set_cookie(
                CHALLENGE_COOKIE,
                token,
                max_age=seconds,
                path=CHALLENGE_PATH,
                secure=secure,
                httponly=True,
                samesite="Strict",
            )
        elif session.challenge == "":
            response.delete_cookie(
                CHALLENGE_COOKIE,
                path=CHALLENGE_PATH,
                secure=secure,
                httponly=True,
                samesite="Strict",
            )
        if session.passkey:
            response.set_cookie(
                PASSKEY_COOKIE,
                session.passkey,
                max_age=int(LIFETIME.total_seconds()),
                path=PASSKEY_PATH,
                secure=secure,
                httponly=True,
                samesite="Strict",
            )
        elif session.passkey == "":
            response.delete_cookie(
                PASSKEY_COOKIE, path=PASSKEY_PATH, secure=secure, httponly=True, samesite="Strict"
            )
        if session.accessed:
            response.vary.add("Cookie")


def _secure(setting: str, https: bool) -> bool:
    if setting == "always":
        return True
    if setting == "never":
        return False
    # "auto": web/proxies.py sets the scheme from X-Forwarded-Proto when the proxy is trusted.
    return https
