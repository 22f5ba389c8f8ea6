"""Hold every query the project makes, and nothing else: no hashing, no policy, no Flask.

The statements every login and page runs are built once, in statements.py; this module runs
them and builds the rest per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from . import statements
from .client import Client
from .models import (
    EventKind,
    LoginEvent,
    PersonalToken,
    Session,
    ThrottleCounter,
    User,
)

#: Execution option that makes a transaction a write one: BEGIN IMMEDIATE on SQLite (see db.py).
WRITE_OPTION = "yupnope_write"

#: Key in the ORM session's ``info`` that marks a write transaction in progress.
_WRITING = "yupnope_writing"


class DuplicateKey(Exception):
    """Report that a write broke a unique constraint (a name taken by a concurrent sign-up)."""


@dataclass(frozen=True)
class Count:
    """Carry a throttle counter's state after an update."""

    count: int
    window_start: datetime
    blocked_until: datetime | None


class Store:
    """Read and write users, sessions and events through one ORM session."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    @contextmanager
    def write(self) -> Iterator[None]:
        """Run the block as one write transaction, committed at its end, rolled back on any error.

        A unique-constraint failure comes out as DuplicateKey. A write inside another write
        (on the same database session) joins it: the outer one commits or rolls back both, so
        an error the caller catches inside the outer block is not rolled back by itself.
        """
        session = self.session
        if session.info.get(_WRITING):
            yield
            return
        # End any read transaction first: the write starts from a fresh snapshot and, on
        # SQLite, holds the write lock from its first statement.
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={WRITE_OPTION: True})
        session.info[_WRITING] = True
        try:
            yield
            session.commit()
        except BaseException as exc:
            session.rollback()
            if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
                raise DuplicateKey(str(exc.orig)) from exc
            raise
        finally:
            session.info[_WRITING] = False

    def end_read(self) -> None:
        """End the current read transaction, so no snapshot is held through slow work.

        A commit rather than a rollback: nothing is pending, and a commit leaves the loaded
        objects as they are instead of expiring them into another round of queries.
        """
        self.session.commit()

    # Users

    def user_by_key(self, username_key: str) -> User | None:
        """Return the user whose folded name is ``username_key``."""
        return self.session.scalars(statements.USER_BY_KEY, {"key_": username_key}).first()

    def user_by_id(self, user_id: int) -> User | None:
        """Return the user with this id."""
        return self.session.get(User, user_id)

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        """Return which of ``keys`` already belong to a user."""
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found.update(
                self.session.scalars(select(User.username_key).where(User.username_key.in_(chunk)))
            )
        return found

    def users(self) -> Sequence[User]:
        """Return every user, by name."""
        return self.session.scalars(select(User).order_by(User.username_key)).all()

    def add_user(self, user: User) -> User:
        """Insert ``user`` and return it with its id."""
        self.session.add(user)
        self.session.flush()
        return user

    def add_users(self, users: Sequence[User]) -> None:
        """Insert many users in one statement batch."""
        self.session.add_all(users)
        self.session.flush()

    def remove_user(self, user_id: int) -> None:
        """Delete a user with their sessions and personal tokens."""
        self.delete_credentials_of(user_id)
        self.session.execute(delete(User).where(User.id == user_id))

    def update_user(self, user: User, **values: object) -> None:
        """Update named columns of one user, and the loaded object to match without dirtying it."""
        self.session.execute(update(User).where(User.id == user.id).values(**values))
        for key, value in values.items():
            set_committed_value(user, key, value)

    def update_user_if_unchanged(self, user: User, **values: object) -> bool:
        """Update a user only if it still exists, enabled, with the hash ``user`` was loaded with.

        Returns False, changing nothing, when an operator removed, disabled or re-passworded
        the user since it was loaded (a login racing that change must lose).
        """
        # The statement sets the columns its parameters name, so anything else must not pass.
        if not values or values.keys() - statements.users.c.keys():
            raise ValueError(f"not a set of user columns: {sorted(values)}")
        result = self.session.execute(
            statements.UPDATE_USER_IF_UNCHANGED,
            {**values, "id_": user.id, "old_hash_": user.password_hash},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        for key, value in values.items():
            set_committed_value(user, key, value)
        return True

    def user_is_unchanged(self, user: User) -> bool:
        """Return whether ``user`` still exists, enabled, with the hash it was loaded with.

        The row is locked until the transaction ends (FOR UPDATE; SQLite's write transaction
        already excludes other writers), so the answer holds for the rest of the transaction.
        """
        found = self.session.execute(statements.USER_STATE, {"id_": user.id}).first()
        return found is not None and found[0] == user.password_hash and not found[1]

    def count_users(self) -> int:
        """Return how many users exist."""
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    # Sessions

    def add_session(self, record: Session) -> Session:
        """Insert a session row and return it with its id and the defaults it was given."""
        # The loaded values, by attribute; models.py names every attribute as its column.
        given = inspect(record).dict
        columns = {key: given[key] for key in statements.sessions.c.keys() if key in given}
        row = self.session.execute(statements.INSERT_SESSION, columns).one()
        for key, value in row._mapping.items():
            set_committed_value(record, key, value)
        return record

    def session_by_digest(self, token_digest: str, kind: str) -> tuple[Session, User] | None:
        """Return the session of ``kind`` whose token hashes to ``token_digest``, with its user."""
        row = self.session.execute(
            statements.SESSION_BY_DIGEST, {"digest_": token_digest, "kind_": kind}
        ).first()
        return None if row is None else (row[0], row[1])

    def sessions_of(self, user_id: int) -> Sequence[Session]:
        """Return a user's sessions, newest first."""
        query = (
            select(Session)
            .where(Session.user_id == user_id)
            .order_by(Session.created_at.desc(), Session.id.desc())
        )
        return self.session.scalars(query).all()

    def delete_session(self, session_id: int, user_id: int | None = None) -> int:
        """Delete one session row, only if it is ``user_id``'s when given; return 0 or 1."""
        if user_id is None:
            result = self.session.execute(statements.DELETE_SESSION, {"id_": session_id})
        else:
            result = self.session.execute(
                delete(Session).where(Session.id == session_id, Session.user_id == user_id)
            )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_credentials_of(self, user_id: int, keep_session: int | None = None) -> int:
        """Delete every session (but ``keep_session``) and personal token of a user.

        Returns how many sessions ended.
        """
        query = delete(Session).where(Session.user_id == user_id)
        if keep_session is not None:
            query = query.where(Session.id != keep_session)
        ended: int = self.session.execute(query).rowcount  # type: ignore[attr-defined]
        self.session.execute(delete(PersonalToken).where(PersonalToken.user_id == user_id))
        return ended

    def touch_session(self, record: Session, now: datetime) -> None:
        """Record that a session was used at ``now``, in the row and the loaded object."""
        self.session.execute(statements.TOUCH_SESSION, {"id_": record.id, "now_": now})
        set_committed_value(record, "last_seen_at", now)

    def delete_expired_sessions(self, idle_before: datetime, now: datetime) -> int:
        """Delete sessions unused since ``idle_before`` or past their absolute end."""
        result = self.session.execute(
            delete(Session).where(
                (Session.last_seen_at < idle_before) | (Session.expires_at <= now)
            )
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def count_sessions_of(self, user_id: int) -> int:
        """Return how many sessions a user has."""
        query = select(func.count()).select_from(Session).where(Session.user_id == user_id)
        return self.session.scalar(query) or 0

    # Personal tokens

    def add_token(self, record: PersonalToken) -> PersonalToken:
        """Insert a personal token row and return it with its id."""
        self.session.add(record)
        self.session.flush()
        return record

    def token_by_digest(self, token_digest: str) -> tuple[PersonalToken, User] | None:
        """Return the personal token whose secret hashes to ``token_digest``, with its user."""
        row = self.session.execute(
            select(PersonalToken, User)
            .join(User, User.id == PersonalToken.user_id)
            .where(PersonalToken.token_digest == token_digest)
        ).first()
        return None if row is None else (row[0], row[1])

    def tokens_of(self, user_id: int) -> Sequence[PersonalToken]:
        """Return a user's personal tokens, newest first."""
        query = (
            select(PersonalToken)
            .where(PersonalToken.user_id == user_id)
            .order_by(PersonalToken.created_at.desc(), PersonalToken.id.desc())
        )
        return self.session.scalars(query).all()

    def count_tokens_of(self, user_id: int) -> int:
        """Return how many personal tokens a user has."""
        query = select(func.count()).select_from(PersonalToken)
        return self.session.scalar(query.where(PersonalToken.user_id == user_id)) or 0

    def delete_token(self, token_id: int, user_id: int) -> int:
        """Delete one of ``user_id``'s personal tokens; return 0 or 1."""
        result = self.session.execute(
            delete(PersonalToken).where(
                PersonalToken.id == token_id, PersonalToken.user_id == user_id
            )
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def touch_token(self, record: PersonalToken, now: datetime) -> None:
        """Record that a personal token was used at ``now``, in the row and the loaded object."""
        self.session.execute(
            update(PersonalToken).where(PersonalToken.id == record.id).values(last_used_at=now)
        )
        set_committed_value(record, "last_used_at", now)

    def delete_expired_tokens(self, now: datetime) -> int:
        """Delete personal tokens past their end."""
        result = self.session.execute(delete(PersonalToken).where(PersonalToken.expires_at <= now))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    # Events

    def record(
        self,
        kind: EventKind,
        now: datetime,
        client: Client,
        user_id: int | None = None,
        username: str | None = None,
    ) -> None:
        """Append one event to the log."""
        self.session.execute(
            statements.INSERT_EVENT,
            {
                "at": now,
                "kind": kind.value,
                "user_id": user_id,
                "username": username,
                "client_address": client.address,
                "user_agent": client.user_agent,
            },
        )

    def events_since(
        self, since: datetime | None = None, user_id: int | None = None
    ) -> Sequence[LoginEvent]:
        """Return events from ``since`` on, oldest first, all or one user's."""
        query = select(LoginEvent).order_by(LoginEvent.at, LoginEvent.id)
        if since is not None:
            query = query.where(LoginEvent.at >= since)
        if user_id is not None:
            query = query.where(LoginEvent.user_id == user_id)
        return self.session.scalars(query).all()

    def delete_events_before(self, before: datetime) -> int:
        """Delete events older than ``before``; return how many."""
        result = self.session.execute(delete(LoginEvent).where(LoginEvent.at < before))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    # Throttle counters

    def hit_counter(self, scope: str, key: str, now: datetime, fresh_after: datetime) -> Count:
        """Add one to a counter in one atomic statement and return its new state.

        A counter whose window began at or before ``fresh_after`` starts a new window at ``now``
        with a count of one. The upsert locks the row, so concurrent hits never lose an update.
        """
        statement = statements.HIT_COUNTER[self.session.get_bind().dialect.name]
        params = {"scope_": scope, "key_": key, "now_": now, "fresh_after_": fresh_after}
        count, window_start, blocked_until = self.session.execute(statement, params).one()
        return Count(count, window_start, blocked_until)

    def block_counter(self, scope: str, key: str, until: datetime) -> None:
        """Refuse further attempts on a counter until ``until``."""
        params = {"scope_": scope, "key_": key, "until_": until}
        self.session.execute(statements.BLOCK_COUNTER, params)

    def unblock_counter(
        self, scope: str, key: str, set_at: datetime, back_to: datetime | None
    ) -> None:
        """Put a counter's wait back to ``back_to``, if it is still the ``set_at`` one set."""
        params = {"scope_": scope, "key_": key, "set_at_": set_at, "back_to_": back_to}
        self.session.execute(statements.UNBLOCK_COUNTER, params)

    def refund_counter(self, scope: str, key: str) -> None:
        """Take one back from a counter (an attempt that turned out to succeed)."""
        self.session.execute(statements.REFUND_COUNTER, {"scope_": scope, "key_": key})

    def clear_counter(self, scope: str, key: str) -> int:
        """Delete a counter; return how many rows went (0 or 1)."""
        result = self.session.execute(statements.CLEAR_COUNTER, {"scope_": scope, "key_": key})
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def counter(self, scope: str, key: str) -> ThrottleCounter | None:
        """Return a counter's row."""
        return self.session.get(ThrottleCounter, (scope, key))

    def delete_stale_counters(self, started_before: datetime, now: datetime) -> int:
        """Delete counters whose window began before ``started_before`` and that block nothing."""
        result = self.session.execute(
            delete(ThrottleCounter).where(
                ThrottleCounter.window_start < started_before,
                (ThrottleCounter.blocked_until.is_(None)) | (ThrottleCounter.blocked_until <= now),
            )
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]


def _is_unique_violation(error: IntegrityError) -> bool:
    """Tell a unique-constraint failure from other integrity errors (a foreign key, a NULL)."""
    # SQLSTATE 23505 is unique_violation on PostgreSQL; SQLite says so in its message.
    return getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(
        error.orig
    )
