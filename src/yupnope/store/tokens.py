"""Query the personal tokens table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Update, bindparam, delete, update
from sqlalchemy.orm import Session as OrmSession

from ..models import PersonalToken
from .credentials import CredentialRows, tokens

TOUCH_TOKEN: Update = (
    update(tokens).where(tokens.c.id == bindparam("id_")).values(last_used_at=bindparam("now_"))
)


class TokenRows(CredentialRows[PersonalToken]):
    """Read and write personal tokens."""

    def __init__(self, session: OrmSession) -> None:
        super().__init__(session, PersonalToken)

    def add(self, record: PersonalToken) -> PersonalToken:
        """Insert a personal token row and return it with its id."""
        self.session.add(record)
        self.session.flush()
        return record

    def touch(self, token_id: int, now: datetime) -> None:
        """Record that a personal token was used at ``now``."""
        self.session.execute(TOUCH_TOKEN, {"id_": token_id, "now_": now})

    def delete_expired(self, now: datetime) -> int:
        """Delete personal tokens past their end."""
        result = self.session.execute(delete(PersonalToken).where(PersonalToken.expires_at <= now))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
