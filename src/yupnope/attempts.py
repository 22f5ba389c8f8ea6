"""Write refused attempts to the event log, never faster than the throttle lets them come."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from .client import Client
from .errors import InvalidCredentials, Throttled
from .kinds import EventKind
from .models import User
from .store import Store
from .throttle import Throttle


class AttemptLog:
    """Record failed and throttled attempts, each counted by the throttle before its row."""

    def __init__(self, store: Store, throttle: Throttle) -> None:
        self.store = store
        self.throttle = throttle

    def failed(self, user: User | None, client: Client, now: datetime) -> NoReturn:
        """Record a failed login and raise the one answer every failure gets."""
        self.record(EventKind.LOGIN_FAILED, user, client, now)
        raise InvalidCredentials()

    def refused(
        self,
        refused: Throttled,
        kind: EventKind,
        user: User | None,
        client: Client,
        now: datetime,
    ) -> None:
        """Record a throttled attempt, if it is the first its counter refused in its window.

        A client repeating refused attempts adds one row per counter and window to the log,
        so the log's growth stays bounded by the throttle's own limits.
        """
        if self.throttle.first_refusal(refused, now):
            self.record(kind, user, client, now)

    def record(self, kind: EventKind, user: User | None, client: Client, now: datetime) -> None:
        """Record a refused attempt against ``user``, or against no account.

        The typed name is kept only when it names an account: a name that matches none is
        often a password typed into the wrong field, and the log must never hold one.
        """
        with self.store.tx.write():
            self.store.events.record(
                kind, now, client, user.id if user else None, user.username if user else None
            )
