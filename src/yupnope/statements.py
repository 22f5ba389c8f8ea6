"""Build once the statements every login and every page runs; only the store executes them.

Building a SQLAlchemy statement (coercing each operand, then deriving the key of the compiled
cache from the new object) cost more CPU than running it: about half of a login's time outside
its hash went there. A statement built once with named parameters keeps its cache key, so each
use goes straight to the compiled SQL. The rest of the store builds its statements per call,
which is clearer and cheap enough for what runs rarely.

Core statements on the tables, rather than on the mapped classes, also skip the ORM's handling
of a statement; the two lookups that hand out mapped objects stay ORM selects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    Delete,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    case,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from .models import LoginEvent, Session, ThrottleCounter, User

users = cast(Table, User.__table__)
sessions = cast(Table, Session.__table__)
events = cast(Table, LoginEvent.__table__)
counters = cast(Table, ThrottleCounter.__table__)

# Parameter names never equal a column's name: SQLAlchemy keeps those for the VALUES and SET
# clauses of inserts and updates.

USER_BY_KEY: Select[User] = select(User).where(User.username_key == bindparam("key_"))

#: A user's hash and state, the row locked until the transaction ends (FOR UPDATE).
USER_STATE: Select[Any] = (
    select(users.c.password_hash, users.c.disabled)
    .where(users.c.id == bindparam("id_"))
    .with_for_update()
)

SESSION_BY_DIGEST: Select[Session, User] = (
    select(Session, User)
    .join(User, User.id == Session.user_id)
    .where(Session.token_digest == bindparam("digest_"), Session.kind == bindparam("kind_"))
)

INSERT_SESSION: Insert = insert(sessions).returning(*sessions.c)

DELETE_SESSION: Delete = delete(sessions).where(sessions.c.id == bindparam("id_"))

TOUCH_SESSION: Update = (
    update(sessions).where(sessions.c.id == bindparam("id_")).values(last_seen_at=bindparam("now_"))
)

INSERT_EVENT: Insert = insert(events)

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


#: Updates the columns named by its parameters (SQLAlchemy makes the SET clause of their names)
#: of a user still enabled with the hash given.
UPDATE_USER_IF_UNCHANGED: Update = update(users).where(
    users.c.id == bindparam("id_"),
    users.c.password_hash == bindparam("old_hash_"),
    users.c.disabled.is_(False),
)
