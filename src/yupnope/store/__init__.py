"""Hold every query the project makes, and nothing else: no hashing, no policy, no Flask.

One module per group of tables, each with the statements every login and page runs built once
at its top: building a SQLAlchemy statement (coercing each operand, then deriving the key of the
compiled cache from the new object) cost more CPU than running it, about half of a login's time
outside its hash. A statement built once with named parameters keeps its cache key, so each use
goes straight to the compiled SQL. What runs rarely builds its statement per call, which reads
more plainly and costs little there. Parameter names never equal a column's name: SQLAlchemy
keeps those for the VALUES and SET clauses of inserts and updates.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Generic, TypeVar

from sqlalchemy.orm import Session as OrmSession

from ..db import Transactions
from .apps import AppRows
from .counters import CounterRows
from .credentials import Credentials
from .events import EventRows
from .factors import FactorRows
from .grants import GrantRows
from .groups import GroupRows
from .mail import MailRows
from .passkeys import PasskeyRows
from .sessions import SessionRows
from .tokens import TokenRows
from .users import UserRows

T = TypeVar("T")


class OnSession(Generic[T]):
    """Make a store's attribute over its ORM session at its first use, then keep it."""

    def __init__(self, make: Callable[[OrmSession], T]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type[Store], name: str) -> None:
        self.name = name

    def __get__(self, store: Store, owner: type[Store]) -> T:
        made = self.make(store.session)
        # Kept in the instance, which Python reads before this descriptor from then on.
        store.__dict__[self.name] = made
        return made


class Store:
    """Read and write every table through one ORM session, and run its transactions.

    The ORM session opens at the first query that needs it: a request that only looks up its
    own credential (``credentials``, outside the ORM) never opens one, nor closes one.
    """

    tx = OnSession(Transactions)
    users = OnSession(UserRows)
    sessions = OnSession(SessionRows)
    tokens = OnSession(TokenRows)
    events = OnSession(EventRows)
    groups = OnSession(GroupRows)
    counters = OnSession(CounterRows)
    factors = OnSession(FactorRows)
    passkeys = OnSession(PasskeyRows)
    apps = OnSession(AppRows)
    grants = OnSession(GrantRows)
    mail = OnSession(MailRows)

    def __init__(self, open_session: Callable[[], OrmSession], credentials: Credentials) -> None:
        self.open_session = open_session
        self.credentials = credentials

    @cached_property
    def session(self) -> OrmSession:
        """Return the ORM session, opened at the first use."""
        return self.open_session()

    def end_credentials_of(self, user_id: int, keep_session: int | None = None) -> int:
        """Delete a user's sessions (but ``keep_session``), tokens, apps' grants, half-done logins.

        Returns how many sessions ended.
        """
        ended = self.sessions.delete_of(user_id, keep=keep_session)
        self.tokens.delete_of(user_id)
        self.grants.delete_of(user_id)
        self.factors.delete_challenges_of(user_id)
        return ended

    def remove_second_factors(self, user_id: int) -> bool:
        """Delete every second factor of a user; return whether there was one."""
        app = self.factors.delete_totp(user_id)
        codes = self.factors.delete_recovery_codes(user_id)
        keys = self.passkeys.delete_of(user_id)
        return app + codes + keys > 0

    def remove_user(self, user_id: int, username: str) -> None:
        """Delete a user with their sessions and personal tokens; name them in their events.

        An event that kept only the account's number (a logout) gets its name: SQLite may give
        the number to the next account (a rowid past the largest in use), and the log must not
        show that account's name on this one's events.
        """
        self.end_credentials_of(user_id)
        self.events.name_account(user_id, username)
        self.users.delete(user_id)
