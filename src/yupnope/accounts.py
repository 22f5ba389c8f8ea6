"""Apply the account rules: sign up, authenticate, change passwords, and the operator's actions.

Plain values in, model objects or errors out; nothing here knows of Flask. Slow work (argon2)
always runs outside any database transaction, so no lock or snapshot is held while hashing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, TypeVar

from . import usernames
from .client import OPERATOR, Client
from .errors import (
    Busy,
    ImportFileError,
    InvalidCredentials,
    InvalidUsername,
    SignupClosed,
    Throttled,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from .models import EventKind, User
from .security import passwords
from .security.passwords import Hasher
from .security.tokens import DeviceCookies
from .store import DuplicateKey, Store
from .throttle import Throttle
from .usernames import Username

T = TypeVar("T")


@dataclass(frozen=True)
class ImportReport:
    """Say what an import did: the names it added and the names it skipped as existing."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    must_change: list[str] = field(default_factory=list)


class Accounts:
    """Carry out every change to accounts, for the pages, the API and the command line alike."""

    def __init__(
        self,
        store: Store,
        hasher: Hasher,
        throttle: Throttle,
        devices: DeviceCookies,
        signup_open: bool = True,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.throttle = throttle
        self.devices = devices
        self.signup_open = signup_open

    def sign_up(self, username: str, password: str, client: Client, now: datetime) -> User:
        """Create an account from the sign-up form, or raise why not.

        Every attempt counts against the client address's sign-up budget, so the answer "that
        name is taken" cannot be used to test names in bulk.
        """
        if not self.signup_open:
            raise SignupClosed()
        try:
            self.throttle.admit_signup(client.address, now)
        except Throttled:
            with self.store.write():
                self.store.record(EventKind.SIGNUP_THROTTLED, now, client)
            raise
        return self._create(username, password, client, now, EventKind.SIGNUP)

    def add_user(self, username: str, password: str, now: datetime) -> User:
        """Create an account for the operator, under the same rules as sign-up."""
        return self._create(username, password, OPERATOR, now, EventKind.ADMIN_USER_ADDED)

    def authenticate(
        self,
        username: str,
        password: str,
        client: Client,
        now: datetime,
        device_cookie: str | None = None,
        then: Callable[[User], object] | None = None,
    ) -> User:
        """Return the user whose name and password these are, or raise why not.

        ``then(user)`` runs inside the login's last write transaction, once the account is
        known to be unchanged since its check: the caller's session start goes there.

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
            name: Username | None = usernames.parse(username)
        except InvalidUsername:
            name = None
        secret = passwords.normalize(password) if password else None
        if name is None or secret is None:
            self._failed(None, client, now)
        user = self.store.user_by_key(name.key)
        self.store.end_read()
        device = self.devices.read(device_cookie, name.key) if device_cookie else None
        try:
            counted = self.throttle.admit_login(name.key, client.address, device, now)
        except Throttled:
            self._record_attempt(EventKind.LOGIN_THROTTLED, user, client, now)
            raise
        try:
            if user is None:
                self.hasher.verify_dummy(secret)
                self._failed(None, client, now)
            matches = self.hasher.verify(user.password_hash, secret)
        except Busy:
            # Not checked, so not an attempt: give it back to every budget it was counted in.
            self.throttle.refund(counted)
            raise
        if not matches or user.disabled:
            self._failed(user, client, now)
        changes: dict[str, object] = {"last_login_at": now}
        if self.hasher.needs_rehash(user.password_hash):
            try:
                changes["password_hash"] = self.hasher.hash(secret)
            except Busy:
                # The login is good; the new hash can wait for a quieter login.
                pass
        if passwords.policy_failure(secret, user.username) is not None:
            changes["must_change_password"] = True
        # One write transaction after the hash, for everything a good login changes: the
        # throttle's counters (when they are in this database), the user, the event, and what
        # ``then`` adds (the new session), so a login costs one commit besides its counting.
        # Counters kept in Redis are one round trip inside it, at most Redis's short timeout.
        with self.store.write():
            unchanged = self.store.update_user_if_unchanged(user, **changes)
            if unchanged:
                self.throttle.succeeded(counted)
                self.store.record(EventKind.LOGIN, now, client, user.id, user.username)
                if then is not None:
                    then(user)
        if not unchanged:
            # An operator removed, disabled or re-passworded the account during the check.
            self._failed(user, client, now)
        return user

    def log_in(
        self,
        username: str,
        password: str,
        client: Client,
        now: datetime,
        start: Callable[[User], T],
        device_cookie: str | None = None,
    ) -> tuple[User, T]:
        """Authenticate as ``authenticate`` does and return the user with ``start(user)``.

        ``start`` (a new session) runs in the login's last write transaction, so the session
        exists exactly when the login succeeded.
        """
        started: list[T] = []
        user = self.authenticate(
            username,
            password,
            client,
            now,
            device_cookie,
            then=lambda found: started.append(start(found)),
        )
        return user, started[0]

    def device_cookie(self, user: User) -> str:
        """Return a new device cookie value for a browser that just logged in as ``user``."""
        return self.devices.sign(user.username_key)

    def unlock(self, user: User, now: datetime) -> bool:
        """Clear the throttle of ``user``'s account; return whether it had one."""
        cleared = self.throttle.unlock(user.username_key)
        with self.store.write():
            self.store.record(EventKind.ADMIN_USER_UNLOCKED, now, OPERATOR, user.id, user.username)
        return cleared

    def change_password(
        self,
        user: User,
        current: str,
        new: str,
        client: Client,
        now: datetime,
        keep_session: int | None = None,
    ) -> None:
        """Replace the password after checking the current one.

        Every other session and every personal token of the user ends with the old password.
        """
        self._check_password(user, current, now)
        new_hash = self.hasher.hash(self._acceptable(new, user.username))
        with self.store.write():
            self.store.update_user(user, password_hash=new_hash, must_change_password=False)
            self.store.delete_credentials_of(user.id, keep_session=keep_session)
            self.store.record(EventKind.PASSWORD_CHANGED, now, client, user.id, user.username)

    def delete_account(self, user: User, password: str, client: Client, now: datetime) -> None:
        """Delete the account with its sessions and tokens, after checking its password."""
        self._check_password(user, password, now)
        with self.store.write():
            self.store.remove_user(user.id)
            self.store.record(EventKind.ACCOUNT_DELETED, now, client, user.id, user.username)

    # The operator's actions

    def find(self, username: str) -> User:
        """Return the user with this name, or raise UnknownUser."""
        user = self.store.user_by_key(usernames.parse(username).key)
        if user is None:
            raise UnknownUser(username)
        return user

    def remove_user(self, user: User, now: datetime) -> None:
        """Delete a user and end their sessions."""
        with self.store.write():
            self.store.remove_user(user.id)
            self.store.record(EventKind.ADMIN_USER_REMOVED, now, OPERATOR, user.id, user.username)

    def set_password(self, user: User, password: str, now: datetime) -> None:
        """Give a user a new password chosen by the operator and end their sessions and tokens."""
        new_hash = self.hasher.hash(self._acceptable(password, user.username))
        with self.store.write():
            self.store.update_user(user, password_hash=new_hash, must_change_password=False)
            self.store.delete_credentials_of(user.id)
            self.store.record(EventKind.ADMIN_PASSWORD_SET, now, OPERATOR, user.id, user.username)

    def set_disabled(self, user: User, disabled: bool, now: datetime) -> None:
        """Disable a user (ending their sessions and tokens) or enable them again."""
        kind = EventKind.ADMIN_USER_DISABLED if disabled else EventKind.ADMIN_USER_ENABLED
        with self.store.write():
            self.store.update_user(user, disabled=disabled)
            if disabled:
                self.store.delete_credentials_of(user.id)
            self.store.record(kind, now, OPERATOR, user.id, user.username)

    def import_users(
        self,
        entries: Mapping[Username, str],
        now: datetime,
        workers: int,
        progress: Callable[[int], None] = lambda _done: None,
    ) -> ImportReport:
        """Add every entry whose name is free, all in one transaction; hash on ``workers`` threads.

        The entries are already checked by the caller. Passwords that fail today's policy are
        kept, so the user can log in once, and marked so that they must choose a new one.
        argon2 releases the GIL, so threads use every core without processes to start.
        """
        existing = self.store.existing_keys([name.key for name in entries])
        self.store.end_read()
        todo = [(name, secret) for name, secret in entries.items() if name.key not in existing]
        report = ImportReport(skipped=[n.display for n in entries if n.key in existing])
        progress(len(report.skipped))

        def hash_one(item: tuple[Username, str]) -> str:
            return self.hasher.hash(item[1])

        hashes: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for encoded in pool.map(hash_one, todo):
                hashes.append(encoded)
                progress(1)
        users = []
        for (name, secret), encoded in zip(todo, hashes, strict=True):
            weak = passwords.policy_failure(secret, name.display) is not None
            users.append(
                User(
                    username=name.display,
                    username_key=name.key,
                    password_hash=encoded,
                    must_change_password=weak,
                    created_at=now,
                )
            )
            report.added.append(name.display)
            if weak:
                report.must_change.append(name.display)
        try:
            with self.store.write():
                self.store.add_users(users)
                self.store.record(EventKind.ADMIN_USERS_IMPORTED, now, OPERATOR)
        except DuplicateKey:
            raise ImportFileError(
                "another import or sign-up took one of these names meanwhile; nothing was "
                "imported, run the import again"
            ) from None
        return report

    def _create(
        self, username: str, password: str, client: Client, now: datetime, kind: EventKind
    ) -> User:
        name = usernames.parse(username)
        secret = self._acceptable(password, name.display)
        if self.store.user_by_key(name.key) is not None:
            raise UsernameTaken(name.display)
        self.store.end_read()
        user = User(
            username=name.display,
            username_key=name.key,
            password_hash=self.hasher.hash(secret),
            created_at=now,
        )
        try:
            with self.store.write():
                self.store.add_user(user)
                self.store.record(kind, now, client, user.id, user.username)
        except DuplicateKey:
            # Another sign-up of the same name won the race between our check and our insert.
            raise UsernameTaken(name.display) from None
        return user

    def _acceptable(self, password: str, username: str) -> str:
        """Return the normalised new password, or raise WeakPassword saying why it is refused."""
        secret = passwords.normalize(password)
        if secret is None and len(password) > passwords.MAX_LENGTH:
            raise WeakPassword("too_long", f"Use at most {passwords.MAX_LENGTH} characters.")
        if secret is None:
            raise WeakPassword("not_text", "The password contains something that is not text.")
        failure = passwords.policy_failure(secret, username)
        if failure is not None:
            raise WeakPassword(failure.reason, failure.message)
        return secret

    def _check_password(self, user: User, password: str, now: datetime) -> None:
        """Raise InvalidCredentials unless ``password`` is ``user``'s (an owner's confirmation).

        The check counts against the account's throttle like a login, so a stolen session
        cannot guess the password faster than a stranger at the login form could (Throttled).
        """
        counted = self.throttle.admit_confirmation(user.username_key, now)
        secret = passwords.normalize(password) if password else None
        try:
            matches = secret is not None and self.hasher.verify(user.password_hash, secret)
        except Busy:
            self.throttle.refund(counted)
            raise
        if not matches:
            raise InvalidCredentials()
        self.throttle.succeeded(counted)

    def _failed(self, user: User | None, client: Client, now: datetime) -> NoReturn:
        """Record a failed login and raise the one answer every failure gets."""
        self._record_attempt(EventKind.LOGIN_FAILED, user, client, now)
        raise InvalidCredentials()

    def _record_attempt(
        self, kind: EventKind, user: User | None, client: Client, now: datetime
    ) -> None:
        """Record a refused login attempt against ``user``, or against no account.

        The typed name is kept only when it names an account: a name that matches none is
        often a password typed into the wrong field, and the log must never hold one.
        """
        with self.store.write():
            self.store.record(
                kind, now, client, user.id if user else None, user.username if user else None
            )
