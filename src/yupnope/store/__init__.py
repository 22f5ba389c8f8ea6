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

from sqlalchemy.orm import Session as OrmSession

from ..db import Transactions
from .counters import CounterRows
from .events import EventRows
from .sessions import SessionRows
from .tokens import TokenRows
from .users import UserRows


class Store:
    """Read and write every table through one ORM session, and run its transactions."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session
        self.tx = Transactions(session)
        self.users = UserRows(session)
        self.sessions = SessionRows(session)
        self.tokens = TokenRows(session)
        self.events = EventRows(session)
        self.counters = CounterRows(session)

    def end_credentials_of(self, user_id: int, keep_session: int | None = None) -> int:
        """Delete every session (but ``keep_session``) and personal token of a user.

        Returns how many sessions ended.
        """
        ended = self.sessions.delete_of(user_id, keep=keep_session)
        self.tokens.delete_of(user_id)
        return ended

    def remove_user(self, user_id: int) -> None:
        """Delete a user with their sessions and personal tokens."""
        self.end_credentials_of(user_id)
        self.users.delete(user_id)
