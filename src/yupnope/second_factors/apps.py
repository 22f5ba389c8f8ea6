"""Enrol, confirm and remove a user's authenticator app (TOTP, RFC 6238).

Enrolment takes two steps: a secret is made and shown (as a QR code and as text), and only a
first right code from the app confirms it, so a secret typed wrong never locks anyone out.
The secret is sealed at rest (security/sealing.py) under the user's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..client import Client
from ..errors import AccountChanged, SecondFactorExists, WrongCode
from ..kinds import EventKind
from ..models import SecondFactor
from ..security import codes
from ..security.sealing import Sealer, Unsealable
from ..snapshots import SessionSnapshot, UserSnapshot
from ..store import Store
from ..throttle import Throttle
from .recovery import RecoveryCodes

#: What authenticator apps show above the codes of this server's accounts.
ISSUER = "yupnope"

#: The HKDF purpose of the key that seals the apps' secrets.
PURPOSE = "yupnope totp secrets"


@dataclass(frozen=True)
class Enrolment:
    """Carry a new authenticator app's secret and the ``otpauth://`` URI that holds it."""

    secret: str
    uri: str


class AuthenticatorApps:
    """Start, confirm and remove the authenticator app of an account."""

    def __init__(
        self, store: Store, sealer: Sealer, throttle: Throttle, issuer: str = ISSUER
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.throttle = throttle
        self.issuer = issuer
        self.recovery = RecoveryCodes(store)

    def secret_of(self, user_id: int, sealed: str) -> str | None:
        """Return the secret sealed for ``user_id``, or None if it no longer opens.

        It does not open after the secret key changed: the app's codes then fail, and the
        account's recovery codes still work.
        """
        try:
            return self.sealer.open(sealed, str(user_id))
        except Unsealable:
            return None

    def enabled(self, user_id: int) -> bool:
        """Return whether the user has a confirmed authenticator app."""
        found = self.store.factors.has_totp(user_id)
        self.store.tx.end_read()
        return found

    def begin(self, user: UserSnapshot, now: datetime) -> Enrolment:
        """Make a new secret for the user's app, unconfirmed until ``confirm``.

        Raises SecondFactorExists while a confirmed app is in use: replacing it takes its
        removal first, which sudo mode guards.
        """
        secret = codes.new_totp_secret()
        with self.store.tx.write():
            if self.store.factors.has_totp(user.id):
                raise SecondFactorExists()
            self.store.factors.start_totp(user.id, self.sealer.seal(secret, str(user.id)), now)
        return Enrolment(secret, codes.totp_uri(secret, user.username, self.issuer))

    def pending(self, user: UserSnapshot) -> Enrolment | None:
        """Return the user's unconfirmed enrolment, to show it again, or None."""
        found = self.store.factors.totp(user.id)
        self.store.tx.end_read()
        if found is None or found.confirmed_at is not None:
            return None
        secret = self.secret_of(user.id, found.sealed_secret)
        if secret is None:
            return None
        return Enrolment(secret, codes.totp_uri(secret, user.username, self.issuer))

    def confirm(
        self,
        user: UserSnapshot,
        session: SessionSnapshot | None,
        code: str,
        client: Client,
        now: datetime,
    ) -> list[str]:
        """Confirm the enrolment with the app's first code; return ten new recovery codes.

        The code is counted on the account's second-step budget like any other. The session
        that confirmed it has proved the app, so it counts as one made with it. Raises
        WrongCode for a wrong code or no enrolment, Throttled, AccountChanged.
        """
        counted = self.throttle.admit_second_factor(user.username_key, None, now)
        found = self.store.factors.totp(user.id)
        self.store.tx.end_read()
        if found is None or found.confirmed_at is not None:
            raise WrongCode()
        secret = self.secret_of(user.id, found.sealed_secret)
        step = None if secret is None else codes.totp_step(secret, code, now)
        if step is None:
            raise WrongCode()
        made = codes.new_recovery_codes()
        with self.store.tx.write():
            if not self.store.users.is_unchanged(user):
                raise AccountChanged()
            if not self.store.factors.confirm_totp(user.id, found.created_at, step, now):
                raise WrongCode()
            self.recovery.replace(user, made, client, now)
            if session is not None:
                self.store.sessions.prove_second_factor(session.id, SecondFactor.TOTP, now)
            self.store.events.record(EventKind.TOTP_ENABLED, now, client, user.id, user.username)
            self.throttle.succeeded(counted)
        return made

    def remove(self, user: UserSnapshot, client: Client, now: datetime) -> bool:
        """Remove the user's app; return whether there was one.

        The recovery codes go with it unless passkeys are left. The callers make sure of sudo
        mode first.
        """
        with self.store.tx.write():
            removed = self.store.factors.delete_totp(user.id) == 1
            self.recovery.drop_if_unneeded(user.id)
            if removed:
                self.store.events.record(
                    EventKind.TOTP_REMOVED, now, client, user.id, user.username
                )
        return removed
