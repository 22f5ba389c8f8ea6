"""Decide what an app's sign-in request needs before it may go on: a login, a consent, nothing.

Consent is remembered per client and set of scopes: a person who allowed an app ``openid
profile`` is not asked again for those, and is asked again when it wants more. An operator may
register a client without consent (its own apps). ``prompt`` and ``max_age`` are OpenID Connect
Core 3.1.2.1's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from ..store import Store
from .claims import Authentication
from .clients import RegisteredClient


class Needed(Enum):
    """Say what a sign-in request waits for."""

    #: Nothing: hand out the code.
    NOTHING = "nothing"
    #: The person must (again) log in: no session, ``prompt=login``, or older than ``max_age``.
    LOGIN = "login"
    #: The person must say yes to the app's scopes.
    CONSENT = "consent"
    #: The person is not in any group the client admits.
    REFUSED = "refused"


@dataclass(frozen=True)
class Request:
    """Hold what the sign-in request asks, as this module reads it."""

    prompt: tuple[str, ...]
    max_age: int | None
    scope: str

    @classmethod
    def of(cls, prompt: str | None, max_age: str | None, scope: str) -> Request:
        """Read ``prompt`` and ``max_age`` as sent; a ``max_age`` that is no number is ignored."""
        # ASCII digits only ("²" is a digit to str.isdigit, and no int), and few enough for
        # int(): Python refuses a number of over 4,300 digits, and a century is ten.
        given = max_age or ""
        age = int(given) if given.isascii() and given.isdigit() and len(given) <= 10 else None
        return cls(tuple((prompt or "").split()), age, scope)


def needed(
    store: Store,
    client: RegisteredClient,
    request: Request,
    user_id: int | None,
    groups: tuple[str, ...],
    auth: Authentication | None,
    now: datetime,
) -> Needed:
    """Return what the request waits for, for a visitor signed in as ``user_id`` (or not)."""
    if user_id is None or auth is None or "login" in request.prompt:
        return Needed.LOGIN
    if request.max_age is not None and now - auth.at > timedelta(seconds=request.max_age):
        return Needed.LOGIN
    if not client.admits(groups):
        return Needed.REFUSED
    if "consent" in request.prompt:
        return Needed.CONSENT
    if not client.consent:
        return Needed.NOTHING
    given = store.apps.consent(user_id, client.row)
    if given is None or not set(request.scope.split()) <= set(given.scope.split()):
        return Needed.CONSENT
    return Needed.NOTHING


def remember(
    store: Store, client: RegisteredClient, user_id: int, scope: str, now: datetime
) -> None:
    """Record that the person allowed ``scope`` to the client, with what they allowed before."""
    given = store.apps.consent(user_id, client.row)
    allowed = set(scope.split()) | (set(given.scope.split()) if given else set())
    with store.tx.write():
        store.apps.remember_consent(user_id, client.row, " ".join(sorted(allowed)), now)
