"""Import users as the operator: names with a password or another system's hash, addresses, groups.

The whole file is one transaction: every user is added, with their address and groups, or
none. A hash is kept as its system made it (security/foreign_hashes.py) until the user's first
login replaces it with argon2id; a password is hashed here, on as many threads as the caller
asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from .accounts import Accounts
from .client import OPERATOR
from .db import DuplicateKey
from .errors import ImportFileError
from .kinds import EventKind
from .models import User
from .notices import LOCKED
from .security import foreign_hashes, hash_costs, passwords
from .usernames import Username

#: The longest hash the users table holds (models.User.password_hash).
MAX_HASH_LENGTH = 256


@dataclass(frozen=True)
class ImportEntry:
    """Carry one user of an import: a normalised password or a hash, an address, groups.

    ``password_hash`` is kept as it is and must be ``storable``; ``email`` is taken as verified
    (the operator vouches for it, as ``users add --email`` does); ``groups`` are parsed names.
    """

    password: str | None = None
    password_hash: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    disabled: bool = False


@dataclass(frozen=True)
class ImportReport:
    """Say what an import did: the names it added, those it skipped as existing (or alike)."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    must_change: list[str] = field(default_factory=list)
    #: Added with another system's hash, kept until their first login.
    kept_hashes: list[str] = field(default_factory=list)
    #: The groups the import created, sorted.
    new_groups: list[str] = field(default_factory=list)


def storable(encoded: str) -> bool:
    """Return whether a login can verify ``encoded``: an argon2 hash or an accepted foreign one.

    A hash locked by "this wasn't me" (notices.py), as ``users export`` writes it, stays locked.
    """
    inner = encoded.removeprefix(LOCKED)
    if len(encoded) > MAX_HASH_LENGTH:
        return False
    if inner.startswith(foreign_hashes.ARGON2_PREFIXES):
        return passwords.is_argon2(inner)
    return foreign_hashes.scheme_of(inner) is not None


def too_costly(encoded: str) -> str | None:
    """Return which cost of a storable ``encoded`` would make each login too dear, or None."""
    return hash_costs.excess(encoded.removeprefix(LOCKED))


def import_users(
    accounts: Accounts,
    entries: Mapping[Username, ImportEntry],
    now: datetime,
    workers: int,
    progress: Callable[[int], None] = lambda _done: None,
) -> ImportReport:
    """Add every entry whose name is free, all in one transaction; hash on ``workers`` threads.

    A name is skipped when an account has it or one that looks like it. The entries are
    already checked by the caller, among them too. Passwords that fail today's policy are
    kept, so the user can log in once, and marked so that they must choose a new one.
    argon2 releases the GIL, so threads use every core without processes to start.
    """
    store = accounts.store
    existing = store.users.taken_among(list(entries))
    todo = [(name, entry) for name, entry in entries.items() if name not in existing]
    addresses = [entry.email.lower() for _, entry in todo if entry.email is not None]
    taken = store.mail.taken_among(addresses)
    store.tx.end_read()
    for name, entry in todo:
        if entry.email is not None and entry.email.lower() in taken:
            raise ImportFileError(
                f"user {name.display!r}: the address {entry.email} belongs to an existing "
                "account; nothing was imported"
            )
    report = ImportReport(skipped=[n.display for n in entries if n in existing])
    progress(len(report.skipped) + sum(1 for _, e in todo if e.password is None))
    to_hash = [entry.password for _, entry in todo if entry.password is not None]
    made: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for encoded in pool.map(accounts.hasher.hash, to_hash):
            made.append(encoded)
            progress(1)
    hashes = iter(made)
    users = []
    for name, entry in todo:
        weak = False
        if entry.password is not None:
            weak = passwords.policy_failure(entry.password, name.display) is not None
        users.append(
            User(
                username=name.display,
                username_key=name.key,
                username_skeleton=name.skeleton,
                password_hash=entry.password_hash or next(hashes),
                must_change_password=weak,
                disabled=entry.disabled,
                created_at=now,
            )
        )
        report.added.append(name.display)
        if weak:
            report.must_change.append(name.display)
        if entry.password_hash is not None:
            report.kept_hashes.append(name.display)
    wanted = {group for _, entry in todo for group in entry.groups}
    try:
        with store.tx.write():
            store.users.add(*users)
            new_groups = sorted(wanted - store.groups.named(wanted).keys())
            for group in new_groups:
                store.groups.add(group, now)
                store.events.record(EventKind.ADMIN_GROUP_ADDED, now, OPERATOR, group_name=group)
            named = store.groups.named(wanted)
            for user, (_, entry) in zip(users, todo, strict=True):
                store.groups.add_members(user.id, [named[group] for group in entry.groups])
                if entry.email is not None:
                    store.mail.set_address(user.id, entry.email, now, now)
            # Recorded only when it added someone: an import of names that all exist changed
            # nothing, and must not read in the log as one that did.
            if users:
                store.events.record(EventKind.ADMIN_USERS_IMPORTED, now, OPERATOR)
    except DuplicateKey:
        raise ImportFileError(
            "another import, sign-up or change took a name, address or group of this file "
            "meanwhile; nothing was imported, run the import again"
        ) from None
    report.new_groups.extend(new_groups)
    return report
