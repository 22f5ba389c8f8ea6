"""Find whom an API request speaks for: its bearer token, or a same-site browser's cookie.

A bearer token is an API session's token or a personal token's secret (RFC 6750). Without an
Authorization header, the browser's session cookie counts, but only on a request the browser
says came from this site: a page of another origin never acts with the user's cookie.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from .. import personal_tokens, wiring
from ..models import SessionKind
from ..snapshots import SessionSnapshot, TokenSnapshot, UserSnapshot
from . import guards
from .answers import CHALLENGE, Refusal


@dataclass(frozen=True)
class Caller:
    """Carry the user an API request acts for and the credential it came with.

    Exactly one of ``session`` (a bearer token or a browser cookie) and ``token`` (a personal
    token) is set.
    """

    user: UserSnapshot
    session: SessionSnapshot | None = None
    token: TokenSnapshot | None = None


def caller() -> Caller:
    """Return whom this request speaks for, or raise the 401 problem."""
    if "yupnope_caller" not in g:
        g.yupnope_caller = _find()
    found: Caller | None = g.yupnope_caller
    if found is None:
        raise not_authenticated()
    return found


def not_authenticated() -> Refusal:
    """Return the 401 problem for a request whose credentials open nothing."""
    # RFC 6750 3.1: an error code only for a bearer token that did not work.
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    given = scheme.lower() == "bearer"
    return Refusal(
        401,
        "not_authenticated",
        "The token is not valid, or has expired or been revoked."
        if given
        else "Log in first: send Authorization: Bearer <token>.",
        headers={"WWW-Authenticate": CHALLENGE + (', error="invalid_token"' if given else "")},
    )


def _find() -> Caller | None:
    header = request.headers.get("Authorization")
    if header is None:
        if guards.from_other_site():
            return None
        current = guards.current()
        return None if current is None else Caller(user=current[1], session=current[0])
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return by_token(value)


def by_token(value: str) -> Caller | None:
    """Return whom a bearer token speaks for: a personal token's or an API session's user."""
    now = guards.now()
    if personal_tokens.is_personal(value):
        token = wiring.personal_tokens().find(value, now)
        if token is not None:
            return Caller(user=token[1], token=token[0])
        # A session's random token starts with the prefix too, once in 16.8 million.
    session = wiring.sessions().find(value, now, SessionKind.API)
    return None if session is None else Caller(user=session[1], session=session[0])
