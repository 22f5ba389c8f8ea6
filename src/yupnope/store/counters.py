"""Query the throttle's counters table: one atomic statement per step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Delete, Insert, Table, Update, bindparam, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession

from ..models import ThrottleCounter

counters = cast(Table, ThrottleCounter.__table__)

_counter_is = (counters.c.scope == bindparam("scope_")) & (counters.c.key == bindparam("key_"))

BLOCK_COUNTER: Update = (
    update(counters).where(_counter_is).values(blocked_until=bindparam("until_"))
)

UNBLOCK_COUNTER: Update = (
    update(counters)
    .where(_counter_is, counters.c.blocked_until == bindparam("set_at_"))
    .values(blocked_until=bindparam("back_to_"))
)

REFUND_COUNTER: Update = (
    update(counters).where(_counter_is, counters.c.count > 0).values(count=counters.c.count - 1)
)

CLEAR_COUNTER: Delete = delete(counters).where(_counter_is)


def _hit_counter(make: Callable[[Table], postgresql.Insert | sqlite.Insert]) -> Insert:
    """Return the upsert that adds one to a counter, in the ON CONFLICT form ``make`` builds."""
    now = bindparam("now_", type_=counters.c.window_start.type)
    stale = counters.c.window_start <= bindparam("fresh_after_", type_=now.type)
    return (
        make(counters)
        .values(scope=bindparam("scope_"), key=bindparam("key_"), count=1, window_start=now)
        .on_conflict_do_update(
            index_elements=["scope", "key"],
            set_={
                "count": case((stale, 1), else_=counters.c.count + 1),
                "window_start": case((stale, now), else_=counters.c.window_start),
            },
        )
        .returning(counters.c.count, counters.c.window_start, counters.c.blocked_until)
    )


#: The counter upsert of each database the project runs on, by dialect name.
HIT_COUNTER: dict[str, Insert] = {
    "postgresql": _hit_counter(postgresql.insert),
    "sqlite": _hit_counter(sqlite.insert),
}


class CounterRows:
    """Change the throttle's counters, each step one atomic statement."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def hit(
        self, scope: str, key: str, now: datetime, fresh_after: datetime
    ) -> tuple[int, datetime, datetime | None]:
        """Add one to a counter; return its count, window start and wait.

        A counter whose window began at or before ``fresh_after`` starts a new window at ``now``
        with a count of one. The upsert locks the row, so concurrent hits never lose an update.
        """
        statement = HIT_COUNTER[self.session.get_bind().dialect.name]
        params = {"scope_": scope, "key_": key, "now_": now, "fresh_after_": fresh_after}
        count, window_start, blocked_until = self.session.execute(statement, params).one()
        return count, window_start, blocked_until

    def block(self, scope: str, key: str, until: datetime) -> None:
        """Refuse further attempts on a counter until ``until``."""
        params = {"scope_": scope, "key_": key, "until_": until}
        self.session.execute(BLOCK_COUNTER, params)

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        """Put a counter's wait back to ``back_to``, if it is still the ``set_at`` one set."""
        params = {"scope_": scope, "key_": key, "set_at_": set_at, "back_to_": back_to}
        self.session.execute(UNBLOCK_COUNTER, params)

    def refund(self, scope: str, key: str) -> None:
        """Take one back from a counter (an attempt that turned out to succeed)."""
        self.session.execute(REFUND_COUNTER, {"scope_": scope, "key_": key})

    def clear(self, scope: str, key: str) -> int:
        """Delete a counter; return how many rows went (0 or 1)."""
        result = self.session.execute(CLEAR_COUNTER, {"scope_": scope, "key_": key})
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_stale(self, started_before: datetime, now: datetime) -> int:
        """Delete counters whose window began before ``started_before`` and that block nothing."""
        result = self.session.execute(
            delete(ThrottleCounter).where(
                ThrottleCounter.window_start < started_before,
                (ThrottleCounter.blocked_until.is_(None)) | (ThrottleCounter.blocked_until <= now),
            )
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
