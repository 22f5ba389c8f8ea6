"""Query the users table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, Update, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from .. import usernames
from ..models import User
from ..snapshots import UserSnapshot
from ..usernames import Username

users = cast(Table, User.__table__)

USER_BY_KEY: Select[User] = select(User).where(User.username_key == bindparam("key_"))

#: Whether a name is taken: its key, or a name that looks like it (the same skeleton).
NAME_TAKEN: Select[Any] = (
    select(users.c.id)
    .where(
        or_(
            users.c.username_key == bindparam("key_"),
            users.c.username_skeleton == bindparam("skeleton_"),
        )
    )
    .limit(1)
)

#: A user's hash and state, the row locked until the transaction ends (FOR UPDATE).
USER_STATE: Select[Any] = (
    select(users.c.password_hash, users.c.disabled)
    .where(users.c.id == bindparam("id_"))
    .with_for_update()
)

#: A user's id, the row locked until the transaction ends (FOR UPDATE): changes to one user's
#: groups take turns, and the user stays until they are made.
LOCK_USER: Select[Any] = select(users.c.id).where(users.c.id == bindparam("id_")).with_for_update()

#: Updates the columns named by its parameters (SQLAlchemy makes the SET clause of their names)
#: of a user still enabled with the hash given.
UPDATE_USER_IF_UNCHANGED: Update = update(users).where(
    users.c.id == bindparam("id_"),
    users.c.password_hash == bindparam("old_hash_"),
    users.c.disabled.is_(False),
)


class UserRows:
    """Read and write users."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def by_id(self, user_id: int) -> User | None:
        """Return the user with ``user_id``, read afresh."""
        return self.session.get(User, user_id, populate_existing=True)

    def by_key(self, username_key: str) -> User | None:
        """Return the user whose folded name is ``username_key``."""
        return self.session.scalars(USER_BY_KEY, {"key_": username_key}).first()

    def taken(self, name: Username) -> bool:
        """Return whether a user has this name, or one that looks like it (the same skeleton)."""
        found = self.session.execute(NAME_TAKEN, {"key_": name.key, "skeleton_": name.skeleton})
        return found.first() is not None

    def taken_among(self, names: Sequence[Username]) -> set[Username]:
        """Return those of ``names`` that a user has, or has one that looks like them."""
        keys: set[str] = set()
        skeletons: set[str | None] = set()
        for start in range(0, len(names), 250):
            chunk = names[start : start + 250]
            found = self.session.execute(
                select(User.username_key, User.username_skeleton).where(
                    or_(
                        User.username_key.in_([name.key for name in chunk]),
                        User.username_skeleton.in_([name.skeleton for name in chunk]),
                    )
                )
            )
            for key, skeleton in found:
                keys.add(key)
                skeletons.add(skeleton)
        return {name for name in names if name.key in keys or name.skeleton in skeletons}

    def all(self) -> Sequence[User]:
        """Return every user, by name."""
        return self.session.scalars(select(User).order_by(User.username_key)).all()

    def add(self, *added: User) -> None:
        """Insert users in one statement batch, giving each its id."""
        self.session.add_all(added)
        self.session.flush()

    def delete(self, user_id: int) -> None:
        """Delete a user's row (their credentials first: see Store.remove_user).

        Migration 0004 kept, without a skeleton, each account that looked like an older one;
        when the account holding the skeleton goes, the oldest of those takes it over, so a new
        name that looks like them is still taken.
        """
        freed = self.session.scalar(
            delete(User).where(User.id == user_id).returning(User.username_skeleton)
        )
        if freed is None:
            return
        unmarked = select(User.id, User.username_key).where(User.username_skeleton.is_(None))
        for found_id, key in self.session.execute(unmarked.order_by(User.id)):
            if usernames.skeleton(key) == freed:
                self.session.execute(
                    update(User).where(User.id == found_id).values(username_skeleton=freed)
                )
                return

    def update(self, user: User, **values: object) -> None:
        """Update named columns of one user, and the loaded object to match without dirtying it."""
        self.session.execute(update(User).where(User.id == user.id).values(**values))
        for key, value in values.items():
            set_committed_value(user, key, value)

    def update_if_unchanged(self, user: User | UserSnapshot, **values: object) -> bool:
        """Update a user only if it still exists, enabled, with the hash ``user`` was loaded with.

        Returns False, changing nothing, when an operator removed, disabled or re-passworded
        the user since it was loaded (a login racing that change must lose); with no values,
        only whether that is so. A loaded ORM
        user is updated to match; a snapshot stays what the request read.
        """
        if not values:
            return self.is_unchanged(user)
        # The statement sets the columns its parameters name, so anything else must not pass.
        if values.keys() - users.c.keys():
            raise ValueError(f"not a set of user columns: {sorted(values)}")
        result = self.session.execute(
            UPDATE_USER_IF_UNCHANGED, {**values, "id_": user.id, "old_hash_": user.password_hash}
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        if isinstance(user, User):
            for key, value in values.items():
                set_committed_value(user, key, value)
        return True

    def lock(self, user_id: int) -> bool:
        """Lock a user's row until the transaction ends; return whether the user exists."""
        return self.session.execute(LOCK_USER, {"id_": user_id}).first() is not None

    def is_unchanged(self, user: User | UserSnapshot) -> bool:
        """Return whether ``user`` still exists, enabled, with the hash it was loaded with.

        The row is locked until the transaction ends (FOR UPDATE; SQLite's write transaction
        already excludes other writers), so the answer holds for the rest of the transaction.
        """
        found = self.session.execute(USER_STATE, {"id_": user.id}).first()
        return found is not None and found[0] == user.password_hash and not found[1]
