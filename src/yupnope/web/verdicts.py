"""Answer a proxy's forward-auth check, given who sent the request it asks about.

What the answer says, for both doors a check may come through: the Flask views of
web/forward.py, and web/checkpoint.py, which answers the common check (a session cookie and
nothing else) before Flask runs. Both read the original request from the proxy's headers with
``original``, make the caller with ``caller``, and answer with ``verdict``, so the two cannot
come to say different things; only who the caller is, and the hooks every answer passes
through, are each door's own. A verdict is plain values, made into a Response by ``response``,
so the door before Flask can keep its rendering under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from flask import Response
from werkzeug.datastructures import Headers

from .. import access
from ..config import Settings
from ..sessions import enrolment_due
from ..snapshots import SessionSnapshot, UserSnapshot
from .answers import CHALLENGE

#: A short answer for a person, shown as it is on the app's host.
TEXT = ("Content-Type", "text/plain; charset=utf-8")

#: What no cache may keep: each answer is about one request, one person, one moment.
NO_STORE = ("Cache-Control", "no-store")


@dataclass(frozen=True)
class Verdict:
    """Hold the answer to a check as plain values: its status, its headers and its body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: str = ""

    def response(self) -> Response:
        """Return the answer as a Response (its Content-Type, if none, and length added)."""
        return Response(self.body, self.status, list(self.headers))


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


def original(headers: Headers, full_url: str | None) -> Original | None:
    """Read the original request from the proxy's headers, or None when they do not say it.

    ``full_url`` is nginx's X-Original-URL; without it, the X-Forwarded-* headers say it.
    """
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
        return None
    return Original(method.upper(), scheme, host, uri)


def caller(user: UserSnapshot, session: SessionSnapshot | None) -> access.Caller:
    """Return ``user`` as the rules see them; ``session``, if any, may have proved a second factor.

    A personal token, like a password sent with the request, proves no second factor.
    """
    proved = session is not None and session.second_factor is not None
    return access.Caller(user.username, user.username_key, frozenset(user.groups), proved)


def cookie_caller(
    found: tuple[SessionSnapshot, UserSnapshot] | None, settings: Settings
) -> access.Caller | None:
    """Return the caller of a session cookie's session and user, or None for nobody.

    A session that must first set up a second factor (the server requires one and this
    browser's login had none) is nobody yet: the portal leads it to set one up before any app
    lets it in.
    """
    if found is None:
        return None
    session, user = found
    if enrolment_due(session.second_factor, settings.second_factor):
        return None
    return caller(user, session)


def verdict(
    original: Original,
    who: access.Caller | None,
    headers: Headers,
    settings: Settings,
    redirect_browsers: bool,
) -> Verdict:
    """Decide on ``original`` for ``who``, and answer as the proxy expects.

    ``headers`` are the check's own (its Accept, its Authorization); ``redirect_browsers``
    is false for nginx, which takes only 2xx, 401 and 403.
    """
    target = access.Request(original.method, original.host, original.uri)
    decision = access.decide(settings.access, target, who)
    if decision.outcome is access.Outcome.ALLOW:
        return _allowed(who)
    if decision.outcome is access.Outcome.DENY:
        # Plain text: shown on the app's host, a page's relative links would be the app's.
        said = f"You are logged in as {who.username}, and " if who is not None else ""
        return Verdict(403, (NO_STORE, TEXT), f"{said}{original.host} is not open to you.\n")
    return _sign_in_first(original, headers, settings, redirect_browsers)


def _allowed(who: access.Caller | None) -> Verdict:
    """Answer 200 with the identity for the app: empty values for an anonymous visitor.

    Sent even empty, so that a proxy told to copy them replaces whatever the client sent.
    """
    user = "" if who is None else _wire(who.username)
    groups = "" if who is None else ",".join(sorted(who.groups))
    return Verdict(200, (NO_STORE, ("Remote-User", user), ("Remote-Groups", groups)))


def _sign_in_first(
    original: Original, headers: Headers, settings: Settings, redirect_browsers: bool
) -> Verdict:
    """Answer a request that needs a session: the login page for a browser, else 401.

    nginx takes only a 401 to mean "sign in first", so its browsers get the 401 with the login
    page in ``Location``: nginx has no way to escape the original URL into ``rd`` itself, and
    its configuration (deploy/forward-auth/nginx.conf) redirects there.
    """
    portal = settings.public_origin
    is_browser = "text/html" in headers.get("Accept", "")
    login = None
    if is_browser and portal and "Authorization" not in headers:
        login = f"{portal}/login?rd={quote(original.url, safe='')}"
        if redirect_browsers:
            return Verdict(302, (NO_STORE, ("Location", login)))
    sent: tuple[tuple[str, str], ...] = (NO_STORE, TEXT, challenge(headers, settings))
    if login is not None:
        sent += (("Location", login),)
    return Verdict(401, sent, "Log in first.\n")


def challenge(headers: Headers, settings: Settings) -> tuple[str, str]:
    """Return the WWW-Authenticate header of a 401: Bearer, and Basic when it is taken."""
    scheme = headers.get("Authorization", "").partition(" ")[0].lower()
    bearer = CHALLENGE + (', error="invalid_token"' if scheme == "bearer" else "")
    basic = ', Basic realm="yupnope", charset="UTF-8"'
    return ("WWW-Authenticate", bearer + (basic if settings.proxy_basic_auth else ""))


def _wire(text: str) -> str:
    """Return ``text`` as its UTF-8 bytes, one character each, which is how WSGI sends them.

    A header value is Latin-1 in WSGI (PEP 3333); a name beyond it still reaches the app as
    UTF-8 on the wire, as the apps behind such proxies read it.
    """
    return text.encode("utf-8").decode("latin-1")
