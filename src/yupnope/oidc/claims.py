"""Say who signed in and how, in the claims apps read: ``sub``, the name, groups, amr, acr.

``amr`` uses the values of RFC 8176 and ``acr`` two levels of this server's own, both documented
in the discovery document: ``1fa`` for a password alone, ``2fa`` when a second factor (or a
passkey, which is one with its user verification) proved the login.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from ..db import DuplicateKey
from ..models import SecondFactor
from ..snapshots import SessionSnapshot, UserSnapshot
from ..store import Store

#: The ``acr`` values, weakest first.
ACR_VALUES = ("1fa", "2fa")

#: The ``amr`` of each way a login's second step was proved (RFC 8176 2).
_AMR = {
    None: ("pwd",),
    SecondFactor.TOTP.value: ("pwd", "otp", "mfa"),
    SecondFactor.RECOVERY_CODE.value: ("pwd", "otp", "mfa"),
    # A passkey asks for the person's PIN or biometric (user verification): two factors in one.
    SecondFactor.PASSKEY.value: ("hwk", "user", "mfa"),
}


@dataclass(frozen=True)
class Authentication:
    """Say how and when a user last proved who they are: what auth_time, amr and acr tell."""

    at: datetime
    amr: tuple[str, ...]
    acr: str

    @classmethod
    def of(cls, session: SessionSnapshot) -> Authentication:
        """Return how the session's owner signed in."""
        amr = _AMR.get(session.second_factor, ("pwd",))
        return cls(
            at=session.authenticated_at or session.created_at,
            amr=amr,
            acr="2fa" if "mfa" in amr else "1fa",
        )


@dataclass(frozen=True)
class EndUser:
    """Hold the signed-in user as the protocol's grants carry it: who, and how they signed in."""

    user: UserSnapshot
    subject: str
    authentication: Authentication
    #: The account's verified email address, if it has one.
    email: str | None = None

    def get_user_id(self) -> int:
        return self.user.id


def subject_of(store: Store, user_id: int) -> str:
    """Return the user's subject, made (random, 128 bits) at the first need."""
    found = store.apps.subject_of(user_id)
    if found is not None:
        return found
    try:
        with store.tx.write():
            store.apps.add_subject(user_id, secrets.token_hex(16))
    except DuplicateKey:
        # Another request made it meanwhile: theirs stands.
        pass
    made = store.apps.subject_of(user_id)
    if made is None:
        raise LookupError(f"no subject for user {user_id} after making one")
    return made


def user_claims(end_user: EndUser, scope: str) -> dict[str, object]:
    """Return the claims about the user that ``scope`` allows, ``sub`` always."""
    scopes = scope.split()
    claims: dict[str, object] = {"sub": end_user.subject}
    if "profile" in scopes:
        claims["preferred_username"] = end_user.user.username
        claims["name"] = end_user.user.username
    if "email" in scopes and end_user.email is not None:
        # Only a verified address is ever an account's (emails.py).
        claims["email"] = end_user.email
        claims["email_verified"] = True
    if "groups" in scopes:
        claims["groups"] = list(end_user.user.groups)
    return claims
