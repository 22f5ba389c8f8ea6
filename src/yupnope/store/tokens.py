"""Query the personal tokens table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from ..models import PersonalToken, User
from .credentials import CredentialRows


class TokenRows(CredentialRows[PersonalToken]):
    """Read and write personal tokens."""

    def __init__(self, session: OrmSession) -> None:
        super().__init__(session, PersonalToken)

    def add(self, record: PersonalToken) -> PersonalToken:
        """Insert a personal token row and return it with its id."""
        self.session.add(record)
        self.session.flush()
        return record

    def by_digest(self, token_digest: str) -> tuple[PersonalToken, User] | None:
        """Return the personal token whose secret hashes to ``token_digest``, with its user."""
        row = self.session.execute(
            select(PersonalToken, User)
            .join(User, User.id == PersonalToken.user_id)
            .where(PersonalToken.token_digest == token_digest)
        ).first()
        return None if row is None else (row[0], row[1])

    def touch(self, record: PersonalToken, now: datetime) -> None:
        """Record that a personal token was used at ``now``, in the row and the loaded object."""
        self.session.execute(
            update(PersonalToken).where(PersonalToken.id == record.id).values(last_used_at=now)
        )
        set_committed_value(record, "last_used_at", now)

    def delete_expired(self, now: datetime) -> int:
        """Delete personal tokens past their end."""
        result = self.session.execute(delete(PersonalToken).where(PersonalToken.expires_at <= now))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
