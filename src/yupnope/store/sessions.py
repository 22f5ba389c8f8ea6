"""Query the sessions table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Delete, Insert, Update, bindparam, delete, insert, inspect, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from ..models import Session
from .credentials import CredentialRows, sessions

INSERT_SESSION: Insert = insert(sessions).returning(*sessions.c)

DELETE_SESSION: Delete = delete(sessions).where(sessions.c.id == bindparam("id_"))

DELETE_SESSION_BY_DIGEST: Delete = delete(sessions).where(
    sessions.c.token_digest == bindparam("digest_"), sessions.c.kind == bindparam("kind_")
)

TOUCH_SESSION: Update = (
    update(sessions).where(sessions.c.id == bindparam("id_")).values(last_seen_at=bindparam("now_"))
)


class SessionRows(CredentialRows[Session]):
    """Read and write sessions."""

    def __init__(self, session: OrmSession) -> None:
        super().__init__(session, Session)

    def add(self, record: Session) -> Session:
        """Insert a session row and return it with its id and the defaults it was given."""
        # The loaded values, by attribute; models.py names every attribute as its column.
        given = inspect(record).dict
        columns = {key: given[key] for key in sessions.c.keys() if key in given}
        row = self.session.execute(INSERT_SESSION, columns).one()
        for key, value in row._mapping.items():
            set_committed_value(record, key, value)
        return record

    def delete(self, session_id: int) -> int:
        """Delete one session row; return 0 or 1."""
        result = self.session.execute(DELETE_SESSION, {"id_": session_id})
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_by_digest(self, token_digest: str, kind: str) -> int:
        """Delete the session of ``kind`` whose token hashes to ``token_digest``; return 0 or 1."""
        result = self.session.execute(
            DELETE_SESSION_BY_DIGEST, {"digest_": token_digest, "kind_": kind}
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def authenticate(self, session_id: int, now: datetime) -> None:
        """Record that a session's owner proved who they are at ``now`` (sudo mode)."""
        self.session.execute(
            update(sessions).where(sessions.c.id == session_id).values(authenticated_at=now)
        )

    def prove_second_factor(self, session_id: int, method: str, now: datetime) -> None:
        """Record that a session's owner proved a second factor at ``now``."""
        self.session.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(second_factor=method, authenticated_at=now)
        )

    def touch(self, session_id: int, now: datetime) -> None:
        """Record that a session was used at ``now``."""
        self.session.execute(TOUCH_SESSION, {"id_": session_id, "now_": now})

    def delete_expired(self, idle_before: datetime, now: datetime) -> int:
        """Delete sessions unused since ``idle_before`` or past their absolute end."""
        result = self.session.execute(
            delete(Session).where(
                (Session.last_seen_at < idle_before) | (Session.expires_at <= now)
            )
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
