"""Apply the owner's account rules: sign up, log in, change the password, delete the account.

Plain values in, model objects and results out, or errors; nothing here knows of Flask. Slow
work (argon2) always runs outside any database transaction, so no lock or snapshot is held while
hashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import new_passwords, usernames
from .attempts import AttemptLog
from .client import Client
from .db import DuplicateKey
from .errors import (
    AccountChanged,
    Busy,
    InvalidUsername,
    SignupClosed,
    Throttled,
    UsernameTaken,
    WrongPassword,
)
from .kinds import EventKind
from .models import SessionKind, User
from .second_factors.second_step import Challenge, SecondStep
from .security import passwords
from .security.passwords import Hasher
from .security.tokens import DeviceCookies
from .sessions import LoginResult, Sessions
from .snapshots import UserSnapshot
from .store import Store
from .sudo import Sudo
from .throttle import Counted, Throttle


@dataclass(frozen=True)
class SecondStepNeeded:
    """Carry a login whose password was right and whose second step is still to come."""

    user: User
    challenge: Challenge


class Accounts:
    """Carry out an owner's changes to their account, for the pages and the API alike.

    The operator's actions build on these rules in operator.py.
    """

    def __init__(
        self,
        store: Store,
        hasher: Hasher,
        throttle: Throttle,
        devices: DeviceCookies,
        sessions: Sessions,
        second_step: SecondStep,
        signup_open: bool = True,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.throttle = throttle
        self.devices = devices
        self.sessions = sessions
        self.signup_open = signup_open
        self.attempts = AttemptLog(store, throttle)
        self.sudo = Sudo(store, hasher, throttle)
        self.second_step = second_step

    def sign_up(self, username: str, password: str, client: Client, now: datetime) -> User:
        """Create an account from the sign-up form, or raise why not.

        Every attempt counts against the client address's sign-up budget, so the answer "that
        name is taken" cannot be used to test names in bulk.
        """
        if not self.signup_open:
            raise SignupClosed()
        try:
            self.throttle.admit_signup(client.address, now)
        except Throttled as refused:
            self.attempts.refused(refused, EventKind.SIGNUP_THROTTLED, None, client, now)
            raise
        return self.create(username, password, client, now, EventKind.SIGNUP)

    def log_in(
        self,
        username: str,
        password: str,
        client: Client,
        now: datetime,
        replacing: str | None = None,
        device_cookie: str | None = None,
        kind: SessionKind = SessionKind.BROWSER,
    ) -> LoginResult | SecondStepNeeded:
        """Check a name and password and start a session of ``kind``, or raise as ``_checked``.

        The session replaces the one whose token is ``replacing`` (the client's own), and
        starts in the login's last write transaction, once the account is known to be
        unchanged since its check: it exists exactly when the login succeeded. An account with
        a second factor gets a challenge there instead, and its session at the second step.
        """
        user, counted, secret = self._checked(username, password, client, now, device_cookie)
        seen = self.devices.read(device_cookie, user.username_key) if device_cookie else None
        known = seen is not None
        changes: dict[str, object] = {}
        challenge = None
        if self.hasher.needs_rehash(user.password_hash):
            try:
                changes["password_hash"] = self.hasher.hash(secret)
            except Busy:
                # The login is good; the new hash can wait for a quieter login.
                pass
        if passwords.policy_failure(secret, user.username) is not None:
            changes["must_change_password"] = True
        # One write transaction after the hash, for everything a good login changes: the
        # throttle's counters (when they are in this database), the user, the event and the
        # new session, so a login costs one commit besides its counting. Counters kept in
        # Redis are one round trip inside it, at most Redis's short timeout.
        with self.store.tx.write():
            second = self.second_step.needed(user.id)
            if not second:
                # With a second step, its success is the login and writes this then.
                changes["last_login_at"] = now
            unchanged = self.store.users.update_if_unchanged(user, **changes)
            if unchanged:
                self.throttle.succeeded(counted)
                if second:
                    challenge = self.second_step.open(user, kind, now)
                else:
                    self.store.events.record(EventKind.LOGIN, now, client, user.id, user.username)
                    started = self.sessions.open(
                        user, client, now, replacing, kind, device_known=known
                    )
        if not unchanged:
            # An operator removed, disabled or re-passworded the account during the check.
            self.attempts.failed(user, client, now)
        if challenge is not None:
            return SecondStepNeeded(user, challenge)
        return LoginResult(user, started, self.devices.sign(user.username_key))

    def check_password(self, username: str, password: str, client: Client, now: datetime) -> User:
        """Check a name and password sent with one request (HTTP Basic, web/forward.py).

        The login's throttle, hash and refusals (see ``_checked``), but no session, and no event
        for a success, which comes with every request.
        """
        user, counted, _ = self._checked(username, password, client, now, None)
        with self.store.tx.write():
            self.throttle.succeeded(counted)
        return user

    def _checked(
        self, username: str, password: str, client: Client, now: datetime, device: str | None
    ) -> tuple[User, Counted, str]:
        """Return the user a name and password open, its counted attempt and the password.

        Raises InvalidCredentials, Throttled (too many failures: checked before any hashing, and
        the same whether the name exists or the password is right) or Busy (no hashing slot).
        Every attempt that gets past the throttle costs exactly one argon2 verify: against the
        user's hash, or against a dummy hash for an unknown name, and also for a disabled
        account, so neither the answer nor its timing tells which part failed.
        """
        if self.hasher.saturated():
            # Refused before anything is counted or read: under a flood of logins a refusal
            # must cost next to nothing, or refusing alone would starve the pages.
            raise Busy()
        try:
            # The key only: a name made before today's rules still logs in, and a look-alike
            # of a name is no account's key, so it fails like any unknown name.
            key: str | None = usernames.lookup_key(username)
        except InvalidUsername:
            key = None
        secret = passwords.normalize(password) if password else None
        if key is None or secret is None:
            # Counted before its event is written, as every attempt is, so malformed attempts
            # are no cheaper way to fill the log than wrong ones.
            try:
                self.throttle.admit_malformed(client.address, now)
            except Throttled as refused:
                self.attempts.refused(refused, EventKind.LOGIN_THROTTLED, None, client, now)
                raise
            self.attempts.failed(None, client, now)
        user = self.store.users.by_key(key)
        if user is None and "@" in username:
            # A verified email address signs in as well as the name (mail_tables.py).
            user = self._by_address(username)
            key = key if user is None else user.username_key
        self.store.tx.end_read()
        known = self.devices.read(device, key) if device else None
        try:
            counted = self.throttle.admit_login(key, client.address, known, now)
        except Throttled as refused:
            self.attempts.refused(refused, EventKind.LOGIN_THROTTLED, user, client, now)
            raise
        try:
            if user is None:
                self.hasher.verify_dummy(secret)
                self.attempts.failed(None, client, now)
            matches = self.hasher.verify(user.password_hash, secret)
        except Busy:
            # Not checked, so not an attempt: give it back to every budget it was counted in.
            self.throttle.refund(counted)
            raise
        if not matches or user.disabled:
            self.attempts.failed(user, client, now)
        return user, counted, secret

    def _by_address(self, address: str) -> User | None:
        """Return the account whose verified email address ``address`` is, or None."""
        found = self.store.mail.by_address(address.strip().lower())
        if found is None or found.verified_at is None:
            return None
        return self.store.users.by_id(found.user_id)

    def change_password(
        self,
        user: User | UserSnapshot,
        current: str,
        new: str,
        client: Client,
        now: datetime,
        keep_session: int | None = None,
    ) -> None:
        """Replace the password after checking the current one.

        Every other session and every personal token of the user ends with the old password.
        The new password is written only over the hash that was checked: an operator's
        password set, disabling or removal committed meanwhile wins (AccountChanged).
        """
        self.sudo.confirm(
            user,
            current,
            client,
            now,
            WrongPassword("The current password is not right.", "current_password"),
        )
        new_hash = self.hasher.hash(new_passwords.acceptable(new, user.username, "new_password"))
        with self.store.tx.write():
            if not self.store.users.update_if_unchanged(
                user, password_hash=new_hash, must_change_password=False
            ):
                raise AccountChanged()
            self.store.end_credentials_of(user.id, keep_session=keep_session)
            self.store.events.record(
                EventKind.PASSWORD_CHANGED, now, client, user.id, user.username
            )

    def delete_account(
        self, user: User | UserSnapshot, password: str, client: Client, now: datetime
    ) -> None:
        """Delete the account with its sessions and tokens, after checking its password.

        Raises AccountChanged, deleting nothing, when an operator changed the account since
        its password was checked.
        """
        self.sudo.confirm(
            user,
            password,
            client,
            now,
            WrongPassword("The password is not right; the account was kept.", "password"),
        )
        with self.store.tx.write():
            if not self.store.users.is_unchanged(user):
                raise AccountChanged()
            self.store.remove_user(user.id, user.username)
            self.store.events.record(EventKind.ACCOUNT_DELETED, now, client, user.id, user.username)

    def create(
        self, username: str, password: str, client: Client, now: datetime, kind: EventKind
    ) -> User:
        """Create an account under the name and password rules, recording ``kind``."""
        name = usernames.parse(username)
        secret = new_passwords.acceptable(password, name.display, "password")
        if self.store.users.taken(name):
            raise UsernameTaken(name.display)
        self.store.tx.end_read()
        user = User(
            username=name.display,
            username_key=name.key,
            username_skeleton=name.skeleton,
            password_hash=self.hasher.hash(secret),
            created_at=now,
        )
        try:
            with self.store.tx.write():
                self.store.users.add(user)
                self.store.events.record(kind, now, client, user.id, user.username)
        except DuplicateKey:
            # Another sign-up of the same name, or of one that looks like it (the skeleton's
            # unique index), won the race between our check and our insert.
            raise UsernameTaken(name.display) from None
        return user
