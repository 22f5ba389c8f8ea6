"""List and end the grants people gave apps: who is signed in where, for the operator and them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..client import OPERATOR, Client
from ..kinds import EventKind
from ..provider_tables import OidcClient, OidcToken
from ..snapshots import UserSnapshot
from ..store import Store
from .errors import UnknownGrant

#: What a grant's id is made of (tokens.py: ``secrets.token_urlsafe``): anything else names none,
#: and is not looked up (PostgreSQL refuses a NUL in text with an error, not a miss).
GRANT = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Connection:
    """Say that one person's sign-in to one app is alive: its grant, since when, what it holds."""

    grant: str
    client_id: str
    client_name: str
    user_id: int
    scope: str
    #: When its newest token was handed out (the sign-in, or the last refresh).
    renewed_at: datetime
    #: Whether the app holds a refresh token, and so may stay signed in.
    offline: bool


class Connections:
    """List the live grants, and revoke one with every token it holds."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def alive(self, user_id: int | None = None) -> list[Connection]:
        """Return the live grants (of one user, or everyone's), oldest renewal first."""
        return [
            Connection(
                grant=token.family,
                client_id=client.client_id,
                client_name=client.name,
                user_id=token.user_id,
                scope=token.scope,
                renewed_at=token.created_at,
                offline=token.refresh_digest is not None,
            )
            for token, client in self.store.grants.families(user_id)
        ]

    def revoke(self, grant: str, now: datetime) -> None:
        """End a grant for the operator: every token of it stops working at once."""
        with self.store.tx.write():
            found = self._live(grant)
            if found is None or not self.store.grants.revoke_family(grant, now):
                raise UnknownGrant(grant)
            token, client = found
            user = self.store.users.by_id(token.user_id)
            self.store.events.record(
                EventKind.ADMIN_APP_SIGNED_OUT,
                now,
                OPERATOR,
                token.user_id,
                user.username if user is not None else None,
                app_name=client.name,
            )

    def sign_out(self, user: UserSnapshot, grant: str, caller: Client, now: datetime) -> bool:
        """End one of ``user``'s own grants and forget their consent to its app.

        The app's tokens stop working at once, and its next sign-in asks the person again.
        Returns False when ``user`` has no live grant by that id.
        """
        with self.store.tx.write():
            found = self._live(grant)
            if found is None or found[0].user_id != user.id:
                return False
            client = found[1]
            self.store.grants.revoke_family(grant, now)
            self.store.apps.forget_consents_of(user.id, client.id)
            self.store.events.record(
                EventKind.APP_SIGNED_OUT, now, caller, user.id, user.username, app_name=client.name
            )
        return True

    def _live(self, grant: str) -> tuple[OidcToken, OidcClient] | None:
        """Return the newest live token of ``grant`` with its client, or None.

        An id not of GRANT's shape is not looked up: it names no grant.
        """
        return self.store.grants.family(grant) if GRANT.fullmatch(grant) else None
