"""Query the groups and their members.

A user's groups as every signed-in request reads them are part of that request's one lookup
(store/credentials.py); what is here serves the operator's changes and lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Delete, Insert, Select, Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session as OrmSession

from ..models import Group, GroupMember
from .users import users

groups = cast(Table, Group.__table__)
members = cast(Table, GroupMember.__table__)

INSERT_GROUP: Insert = insert(groups)

#: A group's id by its name, the row locked until the transaction ends (FOR UPDATE): no
#: member can be added to it meanwhile, since adding one locks it for its key.
GROUP_TO_REMOVE: Select[Any] = (
    select(groups.c.id).where(groups.c.name == bindparam("name_")).with_for_update()
)

DELETE_GROUP: Delete = delete(groups).where(groups.c.id == bindparam("id_"))

#: Groups' ids by their names, each row kept from removal until the transaction ends (FOR KEY
#: SHARE, as PostgreSQL's own check of a new member's foreign key takes it).
GROUPS_NAMED: Select[Any] = (
    select(groups.c.name, groups.c.id)
    .where(groups.c.name.in_(bindparam("names_", expanding=True)))
    .with_for_update(read=True, key_share=True)
)

#: The members of one group, by name: their ids and names as shown.
MEMBERS_OF_GROUP: Select[Any] = (
    select(users.c.id, users.c.username)
    .join_from(members, users, users.c.id == members.c.user_id)
    .where(members.c.group_id == bindparam("group_id_"))
    .order_by(users.c.username_key)
)

#: The groups of one user, with their ids.
GROUPS_OF_USER: Select[Any] = (
    select(groups.c.name, groups.c.id)
    .join_from(members, groups, groups.c.id == members.c.group_id)
    .where(members.c.user_id == bindparam("user_id_"))
)

#: Every group, with how many members it has.
GROUPS_WITH_COUNTS: Select[Any] = (
    select(groups.c.name, func.count(members.c.user_id))
    .outerjoin_from(groups, members, members.c.group_id == groups.c.id)
    .group_by(groups.c.id, groups.c.name)
)

#: Every membership: the user's id and the group's name.
EVERY_MEMBERSHIP: Select[Any] = select(members.c.user_id, groups.c.name).join_from(
    members, groups, groups.c.id == members.c.group_id
)

INSERT_MEMBER: Insert = insert(members)

DELETE_MEMBERS: Delete = delete(members).where(
    members.c.user_id == bindparam("user_id_"),
    members.c.group_id.in_(bindparam("group_ids_", expanding=True)),
)


class GroupRows:
    """Read and write groups and who is in them."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def add(self, name: str, now: datetime) -> None:
        """Insert a group; a name taken by another raises DuplicateKey when the write ends."""
        self.session.execute(INSERT_GROUP, {"name": name, "created_at": now})

    def lock(self, name: str) -> int | None:
        """Return the id of the group named ``name``, locked to be removed, or None."""
        found: int | None = self.session.scalar(GROUP_TO_REMOVE, {"name_": name})
        return found

    def delete(self, group_id: int) -> None:
        """Delete a group; its memberships go with it (ON DELETE CASCADE)."""
        self.session.execute(DELETE_GROUP, {"id_": group_id})

    def named(self, names: Collection[str]) -> dict[str, int]:
        """Return the ids of those of ``names`` that are groups, kept from removal meanwhile."""
        if not names:
            return {}
        found = self.session.execute(GROUPS_NAMED, {"names_": sorted(names)})
        return {name: group_id for name, group_id in found}

    def members_of(self, group_id: int) -> list[tuple[int, str]]:
        """Return the ids and names of a group's members, by name."""
        found = self.session.execute(MEMBERS_OF_GROUP, {"group_id_": group_id})
        return [(user_id, username) for user_id, username in found]

    def of_user(self, user_id: int) -> dict[str, int]:
        """Return the names of a user's groups with their ids."""
        found = self.session.execute(GROUPS_OF_USER, {"user_id_": user_id})
        return {name: group_id for name, group_id in found}

    def by_user(self) -> dict[int, list[str]]:
        """Return every user who is in a group, by id, with their groups' names, sorted."""
        found: dict[int, list[str]] = {}
        for user_id, name in self.session.execute(EVERY_MEMBERSHIP):
            found.setdefault(user_id, []).append(name)
        return {user_id: sorted(names) for user_id, names in found.items()}

    def with_counts(self) -> Sequence[tuple[str, int]]:
        """Return every group's name with its number of members, by name.

        Sorted here, by code point as the signed-in lookup sorts a user's groups: a database's
        collation may order the punctuation of names otherwise.
        """
        return sorted((name, count) for name, count in self.session.execute(GROUPS_WITH_COUNTS))

    def add_members(self, user_id: int, group_ids: Collection[int]) -> None:
        """Put a user in groups they are not in yet."""
        if group_ids:
            rows = [{"user_id": user_id, "group_id": group_id} for group_id in group_ids]
            self.session.execute(INSERT_MEMBER, rows)

    def remove_members(self, user_id: int, group_ids: Collection[int]) -> None:
        """Take a user out of groups."""
        if group_ids:
            self.session.execute(
                DELETE_MEMBERS, {"user_id_": user_id, "group_ids_": list(group_ids)}
            )
