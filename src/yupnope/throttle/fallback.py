"""Count in Redis while it answers, and in the database while it does not.

Throttling never stops with Redis: it moves to the database, with one warning per outage, and
back when Redis answers again: Redis is an option for the counters, never a requirement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .counters import Counters, Keeper
from .database import DatabaseCounters
from .redis import UNREACHABLE

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds an unreachable Redis is left alone before one request tries it again.
RETRY_SECONDS = 5.0


class Outage:
    """Remember, for one process, whether Redis is down and when to try it again.

    One warning per outage and one info line when it ends; while it lasts, one request per
    ``retry_seconds`` tries Redis, and all others go to the database without waiting on it.
    """

    def __init__(
        self, where: str, retry_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.where = where
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.down = False
        self._next_try = 0.0
        self._lock = threading.Lock()

    def worth_trying(self) -> bool:
        """Return whether this request should use Redis: it is up, or this request's turn came."""
        if not self.down:
            return True
        with self._lock:
            now = self.clock()
            if now < self._next_try:
                return False
            # This request tries; the others keep to the database until it has an answer.
            self._next_try = now + self.retry_seconds
            return True

    def began(self, error: BaseException) -> None:
        """Record that Redis did not answer; warn if it had been answering."""
        with self._lock:
            self._next_try = self.clock() + self.retry_seconds
            if self.down:
                return
            self.down = True
        log.warning(
            "Redis at %s is unreachable (%s): throttle counters fall back to the database "
            "until it answers again",
            self.where,
            error,
        )

    def ended(self) -> None:
        """Record that Redis answered; say so if it had been down."""
        if not self.down:
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
        log.info("Redis at %s answers again: throttle counters are back in Redis", self.where)


class FallbackCounters:
    """Keep the counters in Redis, and in the database whenever Redis cannot be reached.

    A transaction that meets an unreachable Redis runs again, whole, on the database (what it
    counted in Redis before stays counted); so an outage makes the counting less shared, as
    the database's counters go on from where the last outage left them, but never absent.
    """

    def __init__(self, remote: Keeper, database: DatabaseCounters, outage: Outage) -> None:
        self.remote = remote
        self.database = database
        self.outage = outage

    def transaction(self, work: Callable[[Counters], T], join: bool = False) -> T:
        if self.outage.worth_trying():
            try:
                result = self.remote.transaction(work, join)
            except UNREACHABLE as exc:
                self.outage.began(exc)
            except BaseException:
                # Redis answered; the work itself refused (Throttled).
                self.outage.ended()
                raise
            else:
                self.outage.ended()
                return result
        return self.database.transaction(work, join)
