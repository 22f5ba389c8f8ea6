"""Keep logged-in sessions on the server: a random token for the client, its sha256 at rest.

A session ends when it is unused for the idle lifetime, when its absolute lifetime is over, at
logout, when its owner ends it from the list of their sessions, and whenever its user is removed,
disabled or logs out everywhere. A browser's session travels in a cookie and an API client's as
a bearer token; each token is accepted only the way it was handed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .client import Client
from .errors import AccountChanged
from .kinds import EventKind
from .metrics import OFF, Metrics
from .models import SecondFactor, Session, SessionKind, User
from .notices import Notices
from .security import tokens
from .snapshots import SessionSnapshot, UserSnapshot
from .store import Store


@dataclass(frozen=True)
class Lifetimes:
    """Carry how long a session may stay unused, at most live, and how often its use is written."""

    idle: timedelta
    absolute: timedelta
    touch: timedelta


@dataclass(frozen=True)
class Started:
    """Carry a new session: the token for the client (never stored) and the stored row."""

    token: str
    record: Session


@dataclass(frozen=True)
class LoginResult:
    """Carry what a good login made: the user, their new session, and a device cookie for it."""

    user: User
    session: Started
    #: A signed value that marks the client as one that logged in to this account before.
    device: str


def enrolment_due(second_factor: str | None, policy: str) -> bool:
    """Return whether a session whose login proved ``second_factor`` must first set one up.

    ``policy`` is the server's second-factor setting: "required" leads a session without one
    to enrolment before any page or app lets it in.
    """
    return second_factor is None and policy == "required"


class Sessions:
    """Start, find and end server-side sessions."""

    def __init__(
        self, store: Store, lifetimes: Lifetimes, notify: bool = False, metrics: Metrics = OFF
    ) -> None:
        self.store = store
        self.lifetimes = lifetimes
        #: Whether a login from a browser the account had not seen queues a notice (notices.py).
        self.notify = notify
        self.metrics = metrics

    def start(
        self,
        user: User,
        client: Client,
        now: datetime,
        replacing: str | None = None,
        kind: SessionKind = SessionKind.BROWSER,
    ) -> Started:
        """Open a session for ``user`` in a write of its own, ending the one of ``replacing``.

        Raises AccountChanged when the user was removed, disabled or given another password
        since it was loaded: an operator's action always wins the race against a sign-in that
        checked the old state.
        """
        with self.store.tx.write():
            if not self.store.users.is_unchanged(user):
                raise AccountChanged()
            return self.open(user, client, now, replacing, kind)

    def open(
        self,
        user: User,
        client: Client,
        now: datetime,
        replacing: str | None = None,
        kind: SessionKind = SessionKind.BROWSER,
        second_factor: SecondFactor | None = None,
        device_known: bool = True,
    ) -> Started:
        """Insert a session for ``user`` under a new token, ending the one of ``replacing``.

        A login from a client without the account's device value (``device_known`` false)
        queues the notice of a new sign-in in the same write, when notices are on.

        A fresh token at every login stops session fixation: a token planted before login is
        worthless after it, and the session the client held (``replacing``, its token) ends.
        Part of the caller's write when one is open (a login's last write, which has made sure
        the user is unchanged), else a write of its own.
        """
        token = tokens.new_token()
        record = Session(
            token_digest=tokens.digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetimes.absolute,
            client_address=client.address,
            user_agent=client.user_agent,
            kind=kind.value,
            second_factor=second_factor.value if second_factor else None,
            authenticated_at=now,
        )
        with self.store.tx.write(join=True):
            if replacing:
                self.store.sessions.delete_by_digest(tokens.digest(replacing), kind.value)
            self.store.sessions.add(record)
            if self.notify and not device_known:
                Notices(self.store).new_sign_in(user, client, now)
        self.metrics.session_started(kind.value)
        return Started(token=token, record=record)

    def find(
        self, token: str, now: datetime, kind: SessionKind = SessionKind.BROWSER
    ) -> tuple[SessionSnapshot, UserSnapshot] | None:
        """Return the live session of ``kind`` for ``token`` with its user, or None.

        One read of the database at every call, never a copy kept between requests, so a
        session ended anywhere is refused at once. An expired session is deleted on sight;
        its last-seen time is written at most once per touch interval, so a busy user does
        not cost a write per page.
        """
        found = self.store.credentials.session(tokens.digest(token), kind.value)
        if found is None:
            return None
        record, user = found
        if now >= record.expires_at or now - record.last_seen_at >= self.lifetimes.idle:
            with self.store.tx.write():
                self.store.sessions.delete(record.id)
            return None
        if user.disabled:
            return None
        if now - record.last_seen_at >= self.lifetimes.touch:
            with self.store.tx.write():
                self.store.sessions.touch(record.id, now)
            record = replace(record, last_seen_at=now)
        return record, user

    def end(self, record: Session | SessionSnapshot, client: Client, now: datetime) -> None:
        """End one session (logout)."""
        with self.store.tx.write():
            self.store.sessions.delete(record.id)
            self.store.events.record(EventKind.LOGOUT, now, client, user_id=record.user_id)

    def of_user(self, user_id: int) -> Sequence[Session]:
        """Return a user's sessions, browsers' and API clients' alike, newest first."""
        found = self.store.sessions.of_user(user_id)
        self.store.tx.end_read()
        return found

    def end_one(self, user_id: int, session_id: int, client: Client, now: datetime) -> bool:
        """End one of the user's own sessions; return False when they have none by that id."""
        with self.store.tx.write():
            ended = self.store.sessions.delete_one(session_id, user_id) == 1
            if ended:
                self.store.events.record(EventKind.SESSION_ENDED, now, client, user_id=user_id)
        return ended

    def end_all(self, user_id: int, client: Client, now: datetime) -> int:
        """End every session and personal token of a user (log out everywhere).

        Returns how many sessions ended.
        """
        with self.store.tx.write():
            ended = self.store.end_credentials_of(user_id)
            self.store.events.record(EventKind.LOGOUT_EVERYWHERE, now, client, user_id=user_id)
        return ended
