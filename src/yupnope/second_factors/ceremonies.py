"""Hold what every WebAuthn ceremony shares: the relying party, and the challenge's one use.

A challenge is 32 random bytes, good for one answer within ``LIFETIME``, and kept as its
digest only, bound to what asked for it: the session that adds a passkey or confirms itself,
the half-done login of a second step, or the browser (a cookie's token) of a login without
a password. An answer is matched to its challenge by the challenge it signed (in its
clientDataJSON) and that binding together; a challenge found nowhere is refused, never
trusted because the client sent it back (WebAuthn Level 3, 13.4.3).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from webauthn.helpers import bytes_to_base64url, parse_client_data_json

from ..security import tokens
from ..store import Store

#: How long a ceremony may take, from its options to its answer.
LIFETIME = timedelta(minutes=5)

#: What the authenticators show as the site's name.
RP_NAME = "yupnope"


class Purpose(StrEnum):
    """Name what a ceremony is for; part of its binding, so one purpose's answer serves no other."""

    REGISTER = "register"
    LOGIN = "login"
    SECOND_STEP = "second-step"
    SUDO = "sudo"


@dataclass(frozen=True)
class RelyingParty:
    """Carry the relying party: its id (a host), the origin answers must come from, its name."""

    id: str
    origin: str
    name: str = RP_NAME

    @classmethod
    def of(cls, public_origin: str, request_origin: str) -> RelyingParty:
        """Return the party of the public URL, or of the request's own origin without one.

        Behind a public URL the RP ID is its host and answers must come from its origin; in
        development, with none, the page's own origin stands in.
        """
        origin = (public_origin or request_origin).rstrip("/")
        return cls(urlsplit(origin).hostname or "", origin)


@dataclass(frozen=True)
class Found:
    """Carry a stored challenge matched to an answer: its row's id, its bytes, what it holds."""

    id: int
    challenge: bytes
    #: What the binding carries past its expected part (a registration's user handle), or "".
    extra: str


class Unanswerable(Exception):
    """Refuse an answer whose challenge is unknown here, of another binding, used or expired."""


def binding(purpose: Purpose, of: object) -> str:
    """Return the binding of a ceremony for ``purpose`` belonging to ``of``."""
    return f"{purpose.value}:{of}"


class Ceremonies:
    """Make challenges, and find the one an answer signed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, bound_to: str, now: datetime) -> bytes:
        """Store a new challenge bound to ``bound_to`` and return it, inside a write."""
        challenge = secrets.token_bytes(32)
        with self.store.tx.write(join=True):
            self.store.passkeys.add_challenge(_digest(challenge), bound_to, now + LIFETIME)
        return challenge

    def find(self, bound_to: str, client_data_json: bytes, now: datetime) -> Found:
        """Return the stored challenge that ``client_data_json`` signed, bound to ``bound_to``.

        A registration's binding also carries the user handle its options offered, since the
        browser's answer does not repeat it: that is ``Found.extra``. Raises Unanswerable.
        """
        try:
            signed = parse_client_data_json(client_data_json).challenge
        except Exception as exc:  # the library raises what JSON and base64 decoding raise
            raise Unanswerable() from exc
        row = self.store.passkeys.challenge(_digest(signed), now)
        if row is None:
            raise Unanswerable()
        if row.binding == bound_to:
            return Found(row.id, signed, "")
        if row.binding.startswith(bound_to + ":"):
            return Found(row.id, signed, row.binding[len(bound_to) + 1 :])
        raise Unanswerable()

    def take(self, found: Found) -> None:
        """Use up ``found``'s challenge inside the caller's write, or raise Unanswerable."""
        if not self.store.passkeys.take_challenge(found.id):
            raise Unanswerable()


def _digest(challenge: bytes) -> str:
    return tokens.digest(bytes_to_base64url(challenge))
