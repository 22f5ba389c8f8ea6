"""Ask the owner to prove who they are again before a change a stolen session must not make.

Sudo mode, as GitHub names it: a session may change the second factors, or make a personal
token, only within ``WINDOW`` of its owner's last proof (the login itself, or the password
asked again). The password change and the account's deletion ask for the password with the
form itself. A personal token is never in sudo mode: it proves nothing about who holds it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .client import Client
from .errors import Busy, ReauthenticationRequired, WrongPassword
from .kinds import EventKind
from .models import User
from .security import passwords
from .security.passwords import Hasher
from .snapshots import SessionSnapshot, UserSnapshot
from .store import Store
from .throttle import Throttle

#: How long after the owner's last proof the changes sudo mode guards are allowed.
WINDOW = timedelta(minutes=10)


class Sudo:
    """Check the owner's password again, and say whether a session is in sudo mode."""

    def __init__(self, store: Store, hasher: Hasher, throttle: Throttle) -> None:
        self.store = store
        self.hasher = hasher
        self.throttle = throttle

    @staticmethod
    def active(session: SessionSnapshot | None, now: datetime) -> bool:
        """Return whether ``session`` proved its owner within WINDOW of ``now``."""
        if session is None or session.authenticated_at is None:
            return False
        return now - session.authenticated_at < WINDOW

    def require(self, session: SessionSnapshot | None, now: datetime) -> None:
        """Raise ReauthenticationRequired unless ``session`` is in sudo mode."""
        if not self.active(session, now):
            raise ReauthenticationRequired(WINDOW)

    def enter(
        self,
        session: SessionSnapshot,
        user: UserSnapshot,
        password: str,
        client: Client,
        now: datetime,
    ) -> None:
        """Put ``session`` in sudo mode after checking its owner's password."""
        wrong = WrongPassword("The password is not right.", "password")
        self.confirm(user, password, client, now, wrong)
        with self.store.tx.write():
            self.store.sessions.authenticate(session.id, now)

    def confirm(
        self,
        user: User | UserSnapshot,
        password: str,
        client: Client,
        now: datetime,
        wrong: WrongPassword,
    ) -> None:
        """Raise ``wrong`` unless ``password`` is ``user``'s (an owner's confirmation).

        The check counts against the account's throttle like a login, so a stolen session
        cannot guess the password faster than a stranger at the login form could (Throttled).
        A wrong password is in the event log: the owner's, or a stolen session's guess. Being
        counted first, such rows come no faster than the throttle lets confirmations come.
        """
        counted = self.throttle.admit_confirmation(user.username_key, now)
        secret = passwords.normalize(password) if password else None
        try:
            matches = secret is not None and self.hasher.verify(user.password_hash, secret)
        except Busy:
            self.throttle.refund(counted)
            raise
        if not matches:
            with self.store.tx.write():
                self.store.events.record(
                    EventKind.PASSWORD_CHECK_FAILED, now, client, user.id, user.username
                )
            raise wrong
        self.throttle.succeeded(counted)
