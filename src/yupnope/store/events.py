"""Query the event log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Insert, Table, delete, insert, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from ..client import Client
from ..kinds import EventKind
from ..models import LoginEvent, User

events = cast(Table, LoginEvent.__table__)

INSERT_EVENT: Insert = insert(events)

#: The log in the order things happened: by time, then by row for events of one moment.
OLDEST_FIRST = (LoginEvent.at, LoginEvent.id)


class EventRows:
    """Append to the event log, read it, and prune it."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def record(
        self,
        kind: EventKind,
        now: datetime,
        client: Client,
        user_id: int | None = None,
        username: str | None = None,
        group_name: str | None = None,
        app_name: str | None = None,
    ) -> None:
        """Append one event to the log."""
        self.session.execute(
            INSERT_EVENT,
            {
                "at": now,
                "kind": kind.value,
                "user_id": user_id,
                "username": username,
                "group_name": group_name,
                "app_name": app_name,
                "client_address": client.address,
                "user_agent": client.user_agent,
            },
        )

    def since(
        self, since: datetime | None = None, user_id: int | None = None
    ) -> Sequence[LoginEvent]:
        """Return events from ``since`` on, oldest first, all or one user's."""
        query = select(LoginEvent).where(*_window(since, user_id)).order_by(*OLDEST_FIRST)
        return self.session.scalars(query).all()

    def since_named(
        self, since: datetime | None = None, user: tuple[int, str] | None = None
    ) -> Sequence[tuple[LoginEvent, str | None]]:
        """Return events from ``since`` on, each with its account's name (None: removed).

        An event such as a logout keeps only the account's number, and gets the name of the
        account that has it; a removed account's events were given its name (``name_account``).
        ``user``, an account's id and name, keeps its events alone: not those of a removed
        account that had the id before.
        """
        query = select(LoginEvent, User.username).outerjoin(User, User.id == LoginEvent.user_id)
        if user is not None:
            user_id, username = user
            query = query.where(
                LoginEvent.user_id == user_id,
                or_(LoginEvent.username.is_(None), LoginEvent.username == username),
            )
        query = query.where(*_window(since, None)).order_by(*OLDEST_FIRST)
        return [(event, name) for event, name in self.session.execute(query)]

    def name_account(self, user_id: int, username: str) -> None:
        """Write ``username`` into the account's events that kept only its number."""
        query = (
            update(LoginEvent)
            .where(LoginEvent.user_id == user_id, LoginEvent.username.is_(None))
            .values(username=username)
        )
        self.session.execute(query)

    def latest(self, user_id: int, kinds: Sequence[str], limit: int) -> Sequence[LoginEvent]:
        """Return one user's latest events of ``kinds``, newest first, at most ``limit``."""
        query = (
            select(LoginEvent)
            .where(LoginEvent.user_id == user_id, LoginEvent.kind.in_(kinds))
            .order_by(LoginEvent.at.desc(), LoginEvent.id.desc())
            .limit(limit)
        )
        return self.session.scalars(query).all()

    def delete_beyond(self, keep: int) -> int:
        """Delete every event but the newest ``keep``; return how many."""
        # Ids only grow, so the newest events are those with the highest ids.
        last_dropped = (
            select(LoginEvent.id).order_by(LoginEvent.id.desc()).offset(keep).limit(1)
        ).scalar_subquery()
        result = self.session.execute(delete(LoginEvent).where(LoginEvent.id <= last_dropped))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_before(self, before: datetime) -> int:
        """Delete events older than ``before``; return how many."""
        result = self.session.execute(delete(LoginEvent).where(LoginEvent.at < before))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]


def _window(since: datetime | None, user_id: int | None) -> list[ColumnElement[bool]]:
    """Return the conditions that keep the events from ``since`` on, all or one user's."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(LoginEvent.at >= since)
    if user_id is not None:
        conditions.append(LoginEvent.user_id == user_id)
    return conditions
