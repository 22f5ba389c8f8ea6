"""Log in with a passkey alone, or confirm a session with one (sudo mode).

A login without a password asks any discoverable passkey, with its user verified: the
authenticator's PIN or biometric stands in for the password, so the passkey is both factors
(NIST SP 800-63B 5.1.8, a multi-factor cryptographic authenticator). The session it makes
counts as one with a second factor, ``passkey``. The passkey that answered names the account,
whose second-step budget (or its known device's) counts the attempt before it is checked.
The second step after a password is in second_step.py.
"""

from __future__ import annotations

from datetime import datetime

from ..client import Client
from ..errors import PasskeyRefused, Throttled
from ..kinds import EventKind
from ..models import SecondFactor, SessionKind, User
from ..notices import locked
from ..security import tokens
from ..security.tokens import DeviceCookies
from ..sessions import LoginResult, Sessions
from ..snapshots import SessionSnapshot, UserSnapshot
from ..store import Store
from ..throttle import Throttle
from .assertions import Answer, Assertions, Unverified
from .ceremonies import Purpose, RelyingParty, binding


def browser_binding(browser_token: str) -> str:
    """Return the binding of a login ceremony to the browser that holds ``browser_token``."""
    return binding(Purpose.LOGIN, tokens.digest(browser_token))


class PasskeyLogins:
    """Log in without a password, and enter sudo mode, with a passkey."""

    def __init__(
        self, store: Store, throttle: Throttle, sessions: Sessions, devices: DeviceCookies
    ) -> None:
        self.store = store
        self.throttle = throttle
        self.sessions = sessions
        self.devices = devices
        self.assertions = Assertions(store)

    def login_options(
        self, party: RelyingParty, browser_token: str, client: Client, now: datetime
    ) -> str:
        """Return the options (JSON) of a login without a password, for this browser.

        Raises Throttled when the client's address, or everyone together, asked for too many
        (each is a row until it expires: throttle.admit_ceremony).
        """
        self.throttle.admit_ceremony(client.address, now)
        with self.store.tx.write():
            return self.assertions.options(party, browser_binding(browser_token), now)

    def log_in(
        self,
        answer: Answer,
        browser_token: str,
        client: Client,
        now: datetime,
        replacing: str | None = None,
        device_cookie: str | None = None,
    ) -> LoginResult:
        """Check a passkey's answer and open a session for its account.

        Raises PasskeyRefused (no such challenge for this browser, an unknown passkey, a
        disabled account, an answer that does not check out) or Throttled.
        """
        try:
            matched = self.assertions.find(answer, browser_binding(browser_token), now)
        except Unverified:
            raise PasskeyRefused() from None
        user = self.store.users.by_id(matched.passkey.user_id)
        self.store.tx.end_read()
        if user is None or user.disabled or locked(user.password_hash):
            # A password locked by "this wasn't me" (notices.py) locks the passkeys out too:
            # an intruder may have added one.
            raise PasskeyRefused()
        known = self.devices.read(device_cookie, user.username_key) if device_cookie else None
        try:
            counted = self.throttle.admit_second_factor(user.username_key, known, now)
        except Throttled as refused:
            if self.throttle.first_refusal(refused, now):
                self._record([EventKind.SECOND_FACTOR_THROTTLED], user, client, now)
            raise
        try:
            checked = self.assertions.verify(matched, require_verified_user=True)
            with self.store.tx.write():
                self.assertions.use(checked, now)
                if not self.store.users.update_if_unchanged(user, last_login_at=now):
                    raise Unverified("the account changed meanwhile")
                self.throttle.succeeded(counted)
                for kind in (EventKind.PASSKEY_USED, EventKind.LOGIN):
                    self.store.events.record(kind, now, client, user.id, user.username)
                started = self.sessions.open(
                    user,
                    client,
                    now,
                    replacing,
                    SessionKind.BROWSER,
                    SecondFactor.PASSKEY,
                    device_known=known is not None,
                )
        except Unverified as exc:
            self.failed(exc, user, client, now)
            raise PasskeyRefused() from None
        return LoginResult(user, started, self.devices.sign(user.username_key))

    def sudo_options(
        self, party: RelyingParty, session: SessionSnapshot, user: UserSnapshot, now: datetime
    ) -> str:
        """Return the options (JSON) that ask one of the user's passkeys to confirm a session."""
        with self.store.tx.write():
            return self.assertions.options(
                party, binding(Purpose.SUDO, session.id), now, user_id=user.id
            )

    def enter_sudo(
        self,
        answer: Answer,
        session: SessionSnapshot,
        user: UserSnapshot,
        client: Client,
        now: datetime,
    ) -> None:
        """Put ``session`` in sudo mode after one of its owner's passkeys answered.

        Counted on the account's confirmation budget, as the password asked again is (sudo.py),
        and the passkey must verify its user: it stands in for the password. Raises
        PasskeyRefused or Throttled.
        """
        try:
            matched = self.assertions.find(answer, binding(Purpose.SUDO, session.id), now)
        except Unverified:
            raise PasskeyRefused() from None
        if matched.passkey.user_id != user.id:
            raise PasskeyRefused()
        counted = self.throttle.admit_confirmation(user.username_key, now)
        try:
            checked = self.assertions.verify(matched, require_verified_user=True)
            with self.store.tx.write():
                self.assertions.use(checked, now)
                self.store.sessions.authenticate(session.id, now)
                self.throttle.succeeded(counted)
        except Unverified as exc:
            self.failed(exc, user, client, now)
            raise PasskeyRefused() from None

    def failed(
        self, exc: Unverified, user: User | UserSnapshot, client: Client, now: datetime
    ) -> None:
        """Record a passkey's refused answer, and a clone suspected when its counter fell back."""
        kinds = [EventKind.PASSKEY_FAILED]
        if exc.clone:
            kinds.append(EventKind.PASSKEY_CLONE_SUSPECTED)
        self._record(kinds, user, client, now)

    def _record(
        self, kinds: list[EventKind], user: User | UserSnapshot, client: Client, now: datetime
    ) -> None:
        with self.store.tx.write():
            for kind in kinds:
                self.store.events.record(kind, now, client, user.id, user.username)
