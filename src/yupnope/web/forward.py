"""Answer reverse proxies' forward-auth checks: who is at an app's door, and may they come in.

A proxy in front of an app asks before it passes each request on, with the request's method,
host and path in headers, and the browser's own headers (its cookie, an Authorization):
- nginx's ``auth_request`` asks ``/auth/request`` and needs ``2xx`` to let the request through,
  ``401`` to send the browser to the login page (its own ``error_page``), ``403`` to refuse;
- Traefik's ``forwardAuth`` and Caddy's ``forward_auth`` ask ``/auth/forward`` and pass any other
  answer to the browser as it is: a browser gets ``302`` to the login page with ``rd``, a
  program ``401`` with a challenge, anyone not allowed ``403``.
Allowed, the answer carries ``Remote-User`` and ``Remote-Groups``, which the proxy copies onto
the request it passes on, over any the client sent itself. The session is read from the
database on every check, so a logout or a change of groups holds at the very next request.

The common check, a session cookie and nothing else, is answered before Flask runs, by
web/checkpoint.py; these views answer the rest (tokens, Basic, anything unusual). Both say
what web/verdicts.py says.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, request

from .. import access, wiring
from ..errors import InvalidCredentials, Throttled
from . import bearer, guards, verdicts
from .answers import Refusal
from .verdicts import NO_STORE, TEXT, Original, Verdict

bp = Blueprint("forward", __name__)

#: Every method: a proxy may ask with the method of the request it checks.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@bp.route("/auth/request", methods=_METHODS)
def nginx_check() -> Response:
    """Answer nginx's ``auth_request``: 200 with the identity, 401 to log in, or 403."""
    original = _original(request.headers.get("X-Original-URL"))
    return _check(original, redirect_browsers=False)


@bp.route("/auth/forward", methods=_METHODS)
def forward_check() -> Response:
    """Answer Traefik's ``forwardAuth`` and Caddy's ``forward_auth``: 200, 302, 401 or 403."""
    return _check(_original(None), redirect_browsers=True)


def _original(full_url: str | None) -> Original:
    """Read the original request from the proxy's headers, or refuse the check (400)."""
    found = verdicts.original(request.headers, full_url)
    if found is None:
        raise Refusal(
            400,
            "bad_request",
            "This address is for a reverse proxy's forward-auth check: send X-Original-URL,"
            " or X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri.",
        )
    return found


def _check(original: Original, redirect_browsers: bool) -> Response:
    """Decide on ``original`` for whoever sent it, and answer as the proxy expects."""
    settings = wiring.get().settings
    try:
        who = _caller()
    except Throttled as exc:
        # nginx takes any answer but 2xx, 401 and 403 for its own failure (a 500).
        status = 401 if not redirect_browsers else 429
        retry = ("Retry-After", str(exc.retry_after))
        challenge = verdicts.challenge(request.headers, settings)
        return Verdict(status, (NO_STORE, TEXT, retry, challenge), f"{exc}\n").response()
    except InvalidCredentials:
        who = None
    return verdicts.verdict(original, who, request.headers, settings, redirect_browsers).response()


def _caller() -> access.Caller | None:
    """Return who sent the original request: a bearer token's user, else the cookie's.

    With PROXY_BASIC_AUTH, a Basic name and password too, checked as a login is (raises
    InvalidCredentials or Throttled).
    """
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        found = bearer.by_token(value)
        if found is not None:
            return verdicts.caller(found.user, found.session)
    elif scheme.lower() == "basic" and value and wiring.get().settings.proxy_basic_auth:
        name, password = _basic(value)
        checked = wiring.accounts().check_password(name, password, guards.client(), guards.now())
        groups = wiring.operator().groups_of(checked)
        return access.Caller(checked.username, checked.username_key, frozenset(groups))
    return verdicts.cookie_caller(guards.current(), wiring.get().settings)


def _basic(value: str) -> tuple[str, str]:
    """Return the name and password of Basic credentials (RFC 7617), or raise InvalidCredentials.

    Malformed credentials fail as a wrong password does, before the throttle: they cost no
    hash and no write, so there is nothing for it to bound.
    """
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredentials() from None
    name, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidCredentials()
    return name, password
