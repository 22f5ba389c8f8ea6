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
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, request

from .. import access, wiring
from ..errors import InvalidCredentials, Throttled
from ..snapshots import SessionSnapshot, UserSnapshot
from . import bearer, guards
from .answers import CHALLENGE, Refusal

bp = Blueprint("forward", __name__)

#: Every method: a proxy may ask with the method of the request it checks.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

#: A short answer for a person, shown as it is on the app's host.
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}

#: What no cache may keep: each answer is about one request, one person, one moment.
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Original:
    """Hold the request a proxy asks about: its method, scheme, host (as sent) and URI."""

    method: str
    scheme: str
    host: str
    uri: str

    @property
    def url(self) -> str:
        """Return the request's URL, to send the browser back to after its login."""
        return f"{self.scheme}://{self.host}{self.uri}"


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
    headers = request.headers
    method = headers.get("X-Original-Method") or headers.get("X-Forwarded-Method") or "GET"
    if full_url:
        try:
            parts = urlsplit(full_url)
        except ValueError:
            # Such as an unclosed IPv6 bracket: no URL a proxy would send.
            parts = urlsplit("")
        scheme, host = parts.scheme, parts.netloc
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        scheme = headers.get("X-Forwarded-Proto", "https")
        host = headers.get("X-Forwarded-Host", "")
        uri = headers.get("X-Forwarded-Uri", "")
    if scheme not in ("http", "https") or not host or not uri.startswith("/"):
        raise Refusal(
            400,
            "bad_request",
            "This address is for a reverse proxy's forward-auth check: send X-Original-URL,"
            " or X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri.",
        )
    return Original(method.upper(), scheme, host, uri)


def _check(original: Original, redirect_browsers: bool) -> Response:
    """Decide on ``original`` for whoever sent it, and answer as the proxy expects."""
    try:
        who = _caller()
    except Throttled as exc:
        # nginx takes any answer but 2xx, 401 and 403 for its own failure (a 500).
        status = 401 if not redirect_browsers else 429
        retry = {"Retry-After": str(exc.retry_after)}
        return Response(f"{exc}\n", status, {**_NO_STORE, **_TEXT, **retry, **_challenge()})
    except InvalidCredentials:
        who = None
    target = access.Request(original.method, original.host, original.uri)
    decision = access.decide(wiring.get().settings.access, target, who)
    if decision.outcome is access.Outcome.ALLOW:
        return _allowed(who)
    if decision.outcome is access.Outcome.DENY:
        # Plain text: shown on the app's host, a page's relative links would be the app's.
        said = f"You are logged in as {who.username}, and " if who is not None else ""
        return Response(f"{said}{original.host} is not open to you.\n", 403, {**_NO_STORE, **_TEXT})
    return _sign_in_first(original, redirect_browsers)


def _allowed(who: access.Caller | None) -> Response:
    """Answer 200 with the identity for the app: empty values for an anonymous visitor.

    Sent even empty, so that a proxy told to copy them replaces whatever the client sent.
    """
    answer = Response("", 200, _NO_STORE)
    answer.headers["Remote-User"] = "" if who is None else _wire(who.username)
    answer.headers["Remote-Groups"] = "" if who is None else ",".join(sorted(who.groups))
    return answer


def _sign_in_first(original: Original, redirect_browsers: bool) -> Response:
    """Answer a request that needs a session: the login page for a browser, else 401.

    nginx takes only a 401 to mean "sign in first", so its browsers get the 401 with the login
    page in ``Location``: nginx has no way to escape the original URL into ``rd`` itself, and
    its configuration (deploy/forward-auth/nginx.conf) redirects there.
    """
    portal = wiring.get().settings.public_origin
    is_browser = "text/html" in request.headers.get("Accept", "")
    login = None
    if is_browser and portal and "Authorization" not in request.headers:
        login = f"{portal}/login?rd={quote(original.url, safe='')}"
        if redirect_browsers:
            return Response("", 302, {**_NO_STORE, "Location": login})
    headers = {**_NO_STORE, **_TEXT, **_challenge()}
    if login is not None:
        headers["Location"] = login
    return Response("Log in first.\n", 401, headers)


def _challenge() -> dict[str, str]:
    """Return the WWW-Authenticate header of a 401: Bearer, and Basic when it is taken."""
    scheme = request.headers.get("Authorization", "").partition(" ")[0].lower()
    bearer = CHALLENGE + (', error="invalid_token"' if scheme == "bearer" else "")
    basic = ', Basic realm="yupnope", charset="UTF-8"'
    return {"WWW-Authenticate": bearer + (basic if wiring.get().settings.proxy_basic_auth else "")}


def _caller() -> access.Caller | None:
    """Return who sent the original request: a bearer token's user, else the cookie's.

    With PROXY_BASIC_AUTH, a Basic name and password too, checked as a login is (raises
    InvalidCredentials or Throttled).
    """
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    user: UserSnapshot | None = None
    session: SessionSnapshot | None = None
    if scheme.lower() == "bearer" and value:
        found = bearer.by_token(value)
        if found is not None:
            user, session = found.user, found.session
    elif scheme.lower() == "basic" and value and wiring.get().settings.proxy_basic_auth:
        name, password = _basic(value)
        checked = wiring.accounts().check_password(name, password, guards.client(), guards.now())
        groups = wiring.operator().groups_of(checked)
        return access.Caller(checked.username, checked.username_key, frozenset(groups))
    if user is None:
        current = guards.current()
        if current is None:
            return None
        session, user = current
        if guards.enrolment_due(session.second_factor):
            # The server requires a second factor and this browser's login had none: the
            # portal leads it to set one up before any app lets it in.
            return None
    # A personal token, like a password sent with the request, proves no second factor.
    proved = session is not None and session.second_factor is not None
    return access.Caller(user.username, user.username_key, frozenset(user.groups), proved)


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


def _wire(text: str) -> str:
    """Return ``text`` as its UTF-8 bytes, one character each, which is how WSGI sends them.

    A header value is Latin-1 in WSGI (PEP 3333); a name beyond it still reaches the app as
    UTF-8 on the wire, as the apps behind such proxies read it.
    """
    return text.encode("utf-8").decode("latin-1")
