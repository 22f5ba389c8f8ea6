"""Run a login's second step: the password was right, now a code (app or recovery) or a passkey.

The first step leaves a challenge (a half-done login that opens nothing) instead of a session;
its token goes to the browser in a short-lived cookie, or to an API client in the 401 that
asks for the code. The second step finds it, counts the code on the account's second-step
budget (or the known device's), checks it, and opens the session in the same write that
takes the code and the challenge, so a code, a recovery code and a challenge each serve once.
A passkey's answer is checked the same way: counted first, its own challenge bound to this
half-done login (second_factors/assertions.py), both taken in that write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..client import Client
from ..errors import ChallengeGone, Throttled, WrongSecondFactor
from ..kinds import EventKind
from ..models import LoginChallenge, SecondFactor, SessionKind, User
from ..security import codes, tokens
from ..security.tokens import DeviceCookies
from ..sessions import LoginResult, Sessions
from ..store import Store
from ..throttle import Throttle
from .apps import AuthenticatorApps
from .assertions import Answer, Assertions, Checked, Unverified
from .ceremonies import Purpose, RelyingParty, binding

log = logging.getLogger(__name__)

#: How long the second step may follow the first.
CHALLENGE_LIFETIME = timedelta(minutes=5)

#: The event a second step records besides the login, by what proved it.
_USED = {
    SecondFactor.RECOVERY_CODE: EventKind.RECOVERY_CODE_USED,
    SecondFactor.PASSKEY: EventKind.PASSKEY_USED,
}


@dataclass(frozen=True)
class Challenge:
    """Carry a half-done login: its token for the client (never stored) and when it ends."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Offered:
    """Say which second factors a half-done login's account can answer with."""

    totp: bool
    passkeys: bool
    #: Whether any of its recovery codes is left.
    recovery_codes: bool


class _Refused(Exception):
    """Leave the second step's write without a trace: the code was wrong, or used already."""

    def __init__(self, clone: bool = False) -> None:
        super().__init__()
        #: Whether a passkey answered with a counter that did not go up (second_factors/
        #: assertions.py): reported in the audit log besides the failure.
        self.clone = clone


class SecondStep:
    """Open challenges at the first step, and turn a challenge and a code into a session."""

    def __init__(
        self,
        store: Store,
        throttle: Throttle,
        sessions: Sessions,
        apps: AuthenticatorApps,
        devices: DeviceCookies,
    ) -> None:
        self.store = store
        self.throttle = throttle
        self.sessions = sessions
        self.apps = apps
        self.devices = devices
        self.passkeys = Assertions(store)

    def needed(self, user_id: int) -> bool:
        """Return whether a login of this user must take a second step (inside its write)."""
        return self.store.factors.has_confirmed(user_id)

    def open(self, user: User, kind: SessionKind, now: datetime) -> Challenge:
        """Insert a challenge for ``user``, inside the first step's last write."""
        token = tokens.new_token()
        record = LoginChallenge(
            token_digest=tokens.digest(token),
            user_id=user.id,
            kind=kind.value,
            created_at=now,
            expires_at=now + CHALLENGE_LIFETIME,
        )
        self.store.factors.add_challenge(record)
        return Challenge(token, record.expires_at)

    def offered(self, token: str, now: datetime) -> Offered:
        """Return the factors the account of the challenge ``token`` has; raise ChallengeGone."""
        _, user = self._challenge(token, SessionKind.BROWSER, now)
        offered = Offered(
            self.store.factors.has_totp(user.id),
            self.store.passkeys.count_of(user.id) > 0,
            self.store.factors.recovery_codes_left(user.id) > 0,
        )
        self.store.tx.end_read()
        return offered

    def passkey_options(self, party: RelyingParty, token: str, now: datetime) -> str:
        """Return the options (JSON) that ask one of the account's passkeys for the second step.

        Raises ChallengeGone.
        """
        challenge, user = self._challenge(token, SessionKind.BROWSER, now)
        with self.store.tx.write():
            return self.passkeys.options(
                party, binding(Purpose.SECOND_STEP, challenge.id), now, user_id=user.id
            )

    def _challenge(
        self, token: str, kind: SessionKind, now: datetime
    ) -> tuple[LoginChallenge, User]:
        """Return the live challenge of ``token`` and its account, or raise ChallengeGone."""
        challenge = (
            self.store.factors.challenge(tokens.digest(token), kind.value) if token else None
        )
        user = self.store.users.by_id(challenge.user_id) if challenge else None
        self.store.tx.end_read()
        if challenge is None or user is None or user.disabled or challenge.expires_at <= now:
            raise ChallengeGone()
        return challenge, user

    def complete(
        self,
        token: str,
        code: str | Answer,
        client: Client,
        now: datetime,
        kind: SessionKind = SessionKind.BROWSER,
        replacing: str | None = None,
        device_cookie: str | None = None,
    ) -> LoginResult:
        """Check ``code`` (or a passkey's answer) against the challenge of ``token``, log in.

        Raises ChallengeGone (no such challenge of ``kind``, expired, or its account changed
        or gone), Throttled (counted before the code is read) or WrongSecondFactor, an
        InvalidCredentials (a wrong code, one used already, or a passkey's answer that does
        not check out).
        """
        challenge, user = self._challenge(token, kind, now)
        known = self.devices.read(device_cookie, user.username_key) if device_cookie else None
        try:
            counted = self.throttle.admit_second_factor(user.username_key, known, now)
        except Throttled as refused:
            if self.throttle.first_refusal(refused, now):
                self._record(EventKind.SECOND_FACTOR_THROTTLED, user, client, now)
            raise
        try:
            if isinstance(code, Answer):
                checked: Checked | None = self._checked(code, challenge, user, now)
                typed = ""
            else:
                checked, typed = None, code
            with self.store.tx.write():
                method = (
                    self._take(user, typed, now) if checked is None else self._use(checked, now)
                )
                if not self.store.factors.take_challenge(challenge.id):
                    raise ChallengeGone()
                if not self.store.users.update_if_unchanged(user, last_login_at=now):
                    raise ChallengeGone()
                self.throttle.succeeded(counted)
                used = _USED.get(method)
                if used is not None:
                    self.store.events.record(used, now, client, user.id, user.username)
                self.store.events.record(EventKind.LOGIN, now, client, user.id, user.username)
                started = self.sessions.open(
                    user, client, now, replacing, kind, method, device_known=known is not None
                )
        except _Refused as refused:
            self._record(EventKind.SECOND_FACTOR_FAILED, user, client, now)
            if refused.clone:
                self._record(EventKind.PASSKEY_CLONE_SUSPECTED, user, client, now)
            raise WrongSecondFactor() from None
        return LoginResult(user, started, self.devices.sign(user.username_key))

    def _checked(
        self, answer: Answer, challenge: LoginChallenge, user: User, now: datetime
    ) -> Checked:
        """Check a passkey's answer to this half-done login, or raise _Refused."""
        try:
            matched = self.passkeys.find(answer, binding(Purpose.SECOND_STEP, challenge.id), now)
            if matched.passkey.user_id != user.id:
                raise Unverified("another account's passkey")
            return self.passkeys.verify(matched, require_verified_user=False)
        except Unverified as exc:
            raise _Refused(exc.clone) from None

    def _use(self, checked: Checked, now: datetime) -> SecondFactor:
        """Take a checked passkey's challenge and counter, or raise _Refused."""
        try:
            self.passkeys.use(checked, now)
        except Unverified as exc:
            raise _Refused(exc.clone) from None
        return SecondFactor.PASSKEY

    def _take(self, user: User, code: str, now: datetime) -> SecondFactor:
        """Use ``code`` as the app's code or as a recovery code, or raise _Refused."""
        found = self.store.factors.totp(user.id)
        if found is not None and found.confirmed_at is not None:
            secret = self.apps.secret_of(user.id, found.sealed_secret)
            if secret is None:
                log.warning("the authenticator app of user %d does not open", user.id)
            step = None if secret is None else codes.totp_step(secret, code, now)
            if step is not None and self.store.factors.take_step(user.id, step):
                return SecondFactor.TOTP
        recovery = codes.recovery_code(code)
        if recovery is not None and self.store.factors.take_recovery_code(
            user.id, tokens.digest(recovery)
        ):
            return SecondFactor.RECOVERY_CODE
        raise _Refused()

    def _record(self, kind: EventKind, user: User, client: Client, now: datetime) -> None:
        with self.store.tx.write():
            self.store.events.record(kind, now, client, user.id, user.username)
