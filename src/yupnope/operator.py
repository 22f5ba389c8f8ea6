"""Carry out the operator's actions on accounts and groups: add, import, export, find, change, list.

Every action is recorded in the event log as the operator's, from the ``cli`` client. Each
read ends its transaction before returning, so nothing is held open while the operator types
or while passwords are hashed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from . import groupnames, imports, new_passwords, usernames
from .accounts import Accounts
from .client import OPERATOR
from .db import DuplicateKey
from .errors import (
    GroupChangeConflict,
    GroupExists,
    GroupNotEmpty,
    UnknownGroup,
    UnknownUser,
    UsernameTaken,
)
from .imports import ImportEntry, ImportReport
from .kinds import EventKind
from .models import LoginEvent, User
from .usernames import Username


@dataclass(frozen=True)
class GroupChange:
    """Say what a change of a user's groups did, and the groups the user is in after it."""

    added: list[str]
    removed: list[str]
    groups: list[str]


class Operator:
    """Carry out the operator's actions, under the same account rules as everyone else's."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.store = accounts.store

    def free_name(self, username: str) -> Username:
        """Return the parsed name when no account has it, or one like it, or raise UsernameTaken."""
        name = usernames.parse(username)
        taken = self.store.users.taken(name)
        self.store.tx.end_read()
        if taken:
            raise UsernameTaken(name.display)
        return name

    def add_user(self, username: str, password: str, now: datetime) -> User:
        """Create an account, under the same rules as sign-up."""
        return self.accounts.create(username, password, OPERATOR, now, EventKind.ADMIN_USER_ADDED)

    def find(self, username: str) -> User:
        """Return the user with this name, or raise UnknownUser."""
        user = self.store.users.by_key(usernames.lookup_key(username))
        self.store.tx.end_read()
        if user is None:
            raise UnknownUser(username)
        return user

    def users(self) -> Sequence[User]:
        """Return every user, by name."""
        found = self.store.users.all()
        self.store.tx.end_read()
        return found

    def events(
        self, since: datetime | None, username: str | None
    ) -> Sequence[tuple[LoginEvent, str | None]]:
        """Return the events from ``since`` on, all or those of the user named ``username``.

        Each comes with the name of its account today, or None for no account or a removed one.
        """
        user = self.find(username) if username is not None else None
        found = self.store.events.since_named(since, (user.id, user.username) if user else None)
        self.store.tx.end_read()
        return found

    def remove_user(self, user: User, now: datetime) -> None:
        """Delete a user and end their sessions."""
        with self.store.tx.write():
            self.store.remove_user(user.id, user.username)
            self._record(EventKind.ADMIN_USER_REMOVED, user, now)

    def set_password(self, user: User, password: str, now: datetime) -> None:
        """Give a user a new password chosen by the operator and end their sessions and tokens."""
        new_hash = self.accounts.hasher.hash(
            new_passwords.acceptable(password, user.username, "password")
        )
        with self.store.tx.write():
            self.store.users.update(user, password_hash=new_hash, must_change_password=False)
            self.store.end_credentials_of(user.id)
            self._record(EventKind.ADMIN_PASSWORD_SET, user, now)

    def set_disabled(self, user: User, disabled: bool, now: datetime) -> None:
        """Disable a user (ending their sessions and tokens) or enable them again."""
        kind = EventKind.ADMIN_USER_DISABLED if disabled else EventKind.ADMIN_USER_ENABLED
        with self.store.tx.write():
            self.store.users.update(user, disabled=disabled)
            if disabled:
                self.store.end_credentials_of(user.id)
            self._record(kind, user, now)

    def unlock(self, user: User, now: datetime) -> bool:
        """Clear the throttle of ``user``'s account; return whether it had one."""
        cleared = self.accounts.throttle.unlock(user.username_key)
        with self.store.tx.write():
            self._record(EventKind.ADMIN_USER_UNLOCKED, user, now)
        return cleared

    def import_users(
        self,
        entries: Mapping[Username, ImportEntry],
        now: datetime,
        workers: int,
        progress: Callable[[int], None] = lambda _done: None,
    ) -> ImportReport:
        """Import users, whole or not at all; see imports.import_users."""
        return imports.import_users(self.accounts, entries, now, workers, progress)

    def export_users(self, now: datetime) -> dict[str, dict[str, object]]:
        """Return every user as ``users import`` reads them: hash, verified address, groups.

        An address not yet verified is left out: its owner never proved it is theirs. The
        export is in the event log: it reads out every password hash.
        """
        with self.store.tx.write():
            found = self.store.users.all()
            addresses = self.store.mail.verified_by_user()
            groups = self.store.groups.by_user()
            self.store.events.record(EventKind.ADMIN_USERS_EXPORTED, now, OPERATOR)
        exported: dict[str, dict[str, object]] = {}
        for user in found:
            entry: dict[str, object] = {"password_hash": user.password_hash}
            if user.id in addresses:
                entry["email"] = addresses[user.id]
            if user.id in groups:
                entry["groups"] = groups[user.id]
            if user.disabled:
                entry["disabled"] = True
            exported[user.username] = entry
        return exported

    def add_group(self, name: str, now: datetime) -> str:
        """Create a group; return its name as kept (groupnames.py)."""
        group = groupnames.parse(name)
        try:
            with self.store.tx.write():
                self.store.groups.add(group, now)
                self.store.events.record(
                    EventKind.ADMIN_GROUP_ADDED, now, OPERATOR, group_name=group
                )
        except DuplicateKey:
            raise GroupExists(group) from None
        return group

    def remove_group(self, name: str, now: datetime, force: bool = False) -> tuple[str, list[str]]:
        """Delete a group; return its name and the names of the members it had.

        A group with members is refused (GroupNotEmpty) unless ``force`` says to end their
        memberships too, each recorded as the member's own event.
        """
        group = groupnames.parse(name)
        with self.store.tx.write():
            group_id = self.store.groups.lock(group)
            if group_id is None:
                raise UnknownGroup(group)
            found = self.store.groups.members_of(group_id)
            if found and not force:
                raise GroupNotEmpty(group, len(found))
            self.store.groups.delete(group_id)
            for user_id, username in found:
                self.store.events.record(
                    EventKind.ADMIN_GROUP_MEMBER_REMOVED, now, OPERATOR, user_id, username, group
                )
            self.store.events.record(EventKind.ADMIN_GROUP_REMOVED, now, OPERATOR, group_name=group)
        return group, [username for _, username in found]

    def groups(self) -> Sequence[tuple[str, int]]:
        """Return every group's name with its number of members, by name."""
        found = self.store.groups.with_counts()
        self.store.tx.end_read()
        return found

    def groups_of(self, user: User) -> list[str]:
        """Return the names of a user's groups, sorted."""
        found = sorted(self.store.groups.of_user(user.id))
        self.store.tx.end_read()
        return found

    def change_groups(
        self, user: User, add: Sequence[str], remove: Sequence[str], now: datetime
    ) -> GroupChange:
        """Put a user in the groups ``add`` names and out of those ``remove`` names, in one write.

        Being in a group already, or not in one to leave, is no error: the change says what
        it did. An unknown group refuses the whole change. The user's next request, through
        any worker or instance, sees the new groups (store/credentials.py).
        """
        adding = {groupnames.parse(name) for name in add}
        leaving = {groupnames.parse(name) for name in remove}
        if adding & leaving:
            raise GroupChangeConflict(min(adding & leaving))
        with self.store.tx.write():
            if not self.store.users.lock(user.id):
                raise UnknownUser(user.username)
            named = self.store.groups.named(adding | leaving)
            missing = sorted((adding | leaving) - named.keys())
            if missing:
                raise UnknownGroup(missing[0])
            current = set(self.store.groups.of_user(user.id))
            added, removed = sorted(adding - current), sorted(leaving & current)
            self.store.groups.add_members(user.id, [named[group] for group in added])
            self.store.groups.remove_members(user.id, [named[group] for group in removed])
            for kind, changed in (
                (EventKind.ADMIN_GROUP_MEMBER_ADDED, added),
                (EventKind.ADMIN_GROUP_MEMBER_REMOVED, removed),
            ):
                for group in changed:
                    self._record(kind, user, now, group)
        return GroupChange(added, removed, sorted((current - leaving) | adding))

    def reset_second_factors(self, user: User, now: datetime) -> bool:
        """Remove a user's second factors and end their sessions and tokens.

        For an owner who lost every factor: their next login asks for the password alone (or
        leads to a new enrolment, where one is required). Returns whether there was a factor.
        """
        with self.store.tx.write():
            removed = self.store.remove_second_factors(user.id)
            self.store.end_credentials_of(user.id)
            self._record(EventKind.ADMIN_SECOND_FACTORS_RESET, user, now)
        return removed

    def _record(self, kind: EventKind, user: User, now: datetime, group: str | None = None) -> None:
        """Record the operator's action on ``user`` (in ``group``) in the event log."""
        self.store.events.record(kind, now, OPERATOR, user.id, user.username, group)
