"""Query what sessions and personal tokens share: one by its digest with its user, a user's rows.

The lookup by digest is what every signed-in request makes, so it reads its row into frozen
snapshots (models.py) with statements built once, outside the ORM. The user's groups come in
the same row, so a change to them is seen by the next request on every worker and instance,
for no round trip more and nothing cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    Column,
    Engine,
    ScalarSelect,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Session as OrmSession

from ..db import lone_reads
from ..models import Credential, PersonalToken, Session
from ..snapshots import SessionSnapshot, TokenSnapshot, UserSnapshot
from .groups import groups, members
from .prepared import Prepared
from .users import users

C = TypeVar("C", bound=Credential)
S = TypeVar("S")

sessions = cast(Table, Session.__table__)
tokens = cast(Table, PersonalToken.__table__)


def snapshot_columns(
    table: Table, snapshot: type[Any], but: frozenset[str] = frozenset()
) -> list[Column[Any]]:
    """Return the columns of ``table`` that ``snapshot`` holds, in the order of its fields.

    ``but`` names the fields that are no column of the table, which the caller selects itself.
    """
    return [table.c[field.name] for field in fields(snapshot) if field.name not in but]


#: The names of the user's groups joined by commas, which no name holds (groupnames.py), or
#: NULL for none: aggregate_strings is group_concat on SQLite, string_agg on PostgreSQL.
#: Correlated with the users row of the lookup it is part of.
USER_GROUPS: ScalarSelect[Any] = (
    select(func.aggregate_strings(groups.c.name, ","))
    .join_from(members, groups, groups.c.id == members.c.group_id)
    .where(members.c.user_id == users.c.id)
    .correlate(users)
    .scalar_subquery()
)

#: What a credential's lookup selects after the credential's own columns: the user's columns,
#: then their groups.
USER_COLUMNS = [*snapshot_columns(users, UserSnapshot, but=frozenset({"groups"})), USER_GROUPS]

#: A session of one kind by its token's digest, with its user: every signed-in page asks it.
SESSION_BY_DIGEST: Select[Any] = (
    select(*snapshot_columns(sessions, SessionSnapshot), *USER_COLUMNS)
    .join_from(sessions, users, users.c.id == sessions.c.user_id)
    .where(sessions.c.token_digest == bindparam("digest_"), sessions.c.kind == bindparam("kind_"))
)

#: A personal token by its secret's digest, with its user: every script's request asks it.
TOKEN_BY_DIGEST: Select[Any] = (
    select(*snapshot_columns(tokens, TokenSnapshot), *USER_COLUMNS)
    .join_from(tokens, users, users.c.id == tokens.c.user_id)
    .where(tokens.c.token_digest == bindparam("digest_"))
)


class Credentials:
    """Find a credential by its digest, with its user, each as a snapshot.

    Each lookup is one statement compiled once for the engine's dialect (store/prepared.py),
    run on a connection of its own, outside any transaction (db.lone_reads), released before
    the answer is made; it bypasses the ORM and SQLAlchemy's execution of each statement: no
    ORM session to open and close, no identity map, no objects to track, for what most
    signed-in requests only read. Made once per process: it keeps nothing but the engine
    and the compiled statements.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = lone_reads(engine)
        self._session = Prepared(self.engine, SESSION_BY_DIGEST)
        self._token = Prepared(self.engine, TOKEN_BY_DIGEST)

    def session(self, token_digest: str, kind: str) -> tuple[SessionSnapshot, UserSnapshot] | None:
        """Return the session of ``kind`` whose token hashes to ``token_digest``, with its user."""
        found = {"digest_": token_digest, "kind_": kind}
        return _with_user(self._session.first(found), SessionSnapshot)

    def token(self, token_digest: str) -> tuple[TokenSnapshot, UserSnapshot] | None:
        """Return the personal token whose secret hashes to ``token_digest``, with its user."""
        return _with_user(self._token.first({"digest_": token_digest}), TokenSnapshot)


def _with_user(values: tuple[Any, ...] | None, snapshot: type[S]) -> tuple[S, UserSnapshot] | None:
    """Return the row of a lookup that selects a credential's columns then USER_COLUMNS."""
    if values is None:
        return None
    split = len(values) - len(USER_COLUMNS)
    joined = values[-1]
    # Sorted here: the order aggregate_strings joins in is the database's to choose.
    names = tuple(sorted(joined.split(","))) if joined else ()
    # mypy cannot count a starred tuple's items: they are every field but the groups.
    user = UserSnapshot(*values[split:-1], groups=names)  # type: ignore[misc]
    return snapshot(*values[:split]), user


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
