"""Keep personal API tokens: named, long-lived credentials a user makes for their scripts.

The secret is shown once, when the token is made; only its sha256 is kept. A token ends at its
expiry, when its owner revokes it, and with the user's other credentials: a password change,
logging out everywhere, disabling or removing the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .client import Client
from .errors import (
    AccountChanged,
    InvalidTokenRequest,
    PasswordChangeRequired,
    SessionRequired,
    TooManyTokens,
)
from .kinds import EventKind
from .models import PersonalToken, User
from .security import tokens
from .snapshots import TokenSnapshot, UserSnapshot
from .store import Store

#: Start of every personal token's secret, so that a leaked one is recognisable (secret
#: scanners, logs) and a bearer token says which table it belongs to without a second lookup.
TOKEN_PREFIX = "ynp_"  # noqa: S105 (a public marker, not a secret)

#: Longest life a personal token may be given; a script's credential should still expire.
MAX_LIFETIME = timedelta(days=366)

#: Shortest life a personal token may be given.
MIN_LIFETIME = timedelta(minutes=1)

#: Life of a personal token when its maker names none.
DEFAULT_LIFETIME = timedelta(days=90)

#: Personal tokens one user may hold at once, so a loop in a script cannot fill the table.
MAX_PER_USER = 50

#: Longest name a personal token may carry.
MAX_NAME_LENGTH = 100

#: Seconds between two writes of a token's last-used time.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class Issued:
    """Carry a new personal token: its secret (shown once, never stored) and its stored row."""

    secret: str
    record: PersonalToken


class PersonalTokens:
    """Make, find, list and revoke personal API tokens."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def issue(
        self,
        user: User | UserSnapshot,
        name: str,
        lifetime: timedelta,
        client: Client,
        now: datetime,
        by_token: bool = False,
    ) -> Issued:
        """Make a token named ``name`` for ``user`` that lives ``lifetime``.

        Raises SessionRequired when asked with a personal token (``by_token``), so a leaked
        token cannot mint longer-lived ones; InvalidTokenRequest for a blank, unprintable or
        too long name or a lifetime out of bounds; PasswordChangeRequired while the user's
        password must be changed first; TooManyTokens when the user holds the most they may;
        and AccountChanged when the user was removed, disabled or given another password
        since the request began: a token must not outlive the credentials it was made with.
        """
        if by_token:
            raise SessionRequired()
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise InvalidTokenRequest(
                "name", f"Name the token with 1 to {MAX_NAME_LENGTH} printable characters."
            )
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise InvalidTokenRequest(
                "expires_in",
                f"A token lives from {int(MIN_LIFETIME.total_seconds())} to "
                f"{int(MAX_LIFETIME.total_seconds())} seconds.",
            )
        if user.must_change_password:
            raise PasswordChangeRequired()
        secret = TOKEN_PREFIX + tokens.new_token()
        record = PersonalToken(
            token_digest=tokens.digest(secret),
            user_id=user.id,
            name=name,
            created_at=now,
            expires_at=now + lifetime,
        )
        with self.store.tx.write():
            # Locks the user's row, so concurrent requests also count the tokens one by one.
            if not self.store.users.is_unchanged(user):
                raise AccountChanged()
            if self.store.tokens.count_of(user.id) >= MAX_PER_USER:
                raise TooManyTokens(MAX_PER_USER)
            self.store.tokens.add(record)
            self.store.events.record(EventKind.TOKEN_CREATED, now, client, user.id, user.username)
        return Issued(secret=secret, record=record)

    def find(self, secret: str, now: datetime) -> tuple[TokenSnapshot, UserSnapshot] | None:
        """Return the live token whose secret this is, with its user, or None.

        One read of the database at every call, never a copy kept between requests, so a
        revoked token is refused at once. An expired token is deleted on sight, and a
        disabled user's tokens open nothing.
        """
        found = self.store.credentials.token(tokens.digest(secret))
        if found is None:
            return None
        record, user = found
        if now >= record.expires_at:
            with self.store.tx.write():
                self.store.tokens.delete_one(record.id, record.user_id)
            return None
        if user.disabled:
            return None
        if record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL:
            with self.store.tx.write():
                self.store.tokens.touch(record.id, now)
            record = replace(record, last_used_at=now)
        return record, user

    def of_user(self, user_id: int) -> Sequence[PersonalToken]:
        """Return a user's tokens, newest first."""
        found = self.store.tokens.of_user(user_id)
        self.store.tx.end_read()
        return found

    def revoke(
        self, user: User | UserSnapshot, token_id: int, client: Client, now: datetime
    ) -> bool:
        """Revoke one of the user's own tokens; return False when they have none by that id."""
        with self.store.tx.write():
            revoked = self.store.tokens.delete_one(token_id, user.id) == 1
            if revoked:
                self.store.events.record(
                    EventKind.TOKEN_REVOKED, now, client, user.id, user.username
                )
        return revoked


def is_personal(secret: str) -> bool:
    """Return whether a bearer token is a personal token's secret rather than a session's."""
    return secret.startswith(TOKEN_PREFIX)
