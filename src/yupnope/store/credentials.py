"""Query what sessions and personal tokens share: a user's list, one of theirs, all of theirs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as OrmSession

from ..models import Credential

C = TypeVar("C", bound=Credential)


class CredentialRows(Generic[C]):
    """Read and delete the rows of one credential table by their user."""

    def __init__(self, session: OrmSession, model: type[C]) -> None:
        self.session = session
        self.model = model

    def of_user(self, user_id: int) -> Sequence[C]:
        """Return a user's rows, newest first."""
        model = self.model
        query = (
            select(model)
            .where(model.user_id == user_id)
            .order_by(model.created_at.desc(), model.id.desc())
        )
        return self.session.scalars(query).all()

    def count_of(self, user_id: int) -> int:
        """Return how many rows a user has."""
        query = select(func.count()).select_from(self.model)
        return self.session.scalar(query.where(self.model.user_id == user_id)) or 0

    def delete_one(self, row_id: int, user_id: int) -> int:
        """Delete one row, only if it is ``user_id``'s; return 0 or 1."""
        model = self.model
        result = self.session.execute(
            delete(model).where(model.id == row_id, model.user_id == user_id)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_of(self, user_id: int, keep: int | None = None) -> int:
        """Delete every row of a user but ``keep``; return how many went."""
        query = delete(self.model).where(self.model.user_id == user_id)
        if keep is not None:
            query = query.where(self.model.id != keep)
        return self.session.execute(query).rowcount  # type: ignore[attr-defined, no-any-return]
