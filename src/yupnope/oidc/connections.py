"""List and end the grants people gave apps: the operator's view of who is signed in where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..store import Store
from .errors import UnknownGrant


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
        """End a grant: every access and refresh token of it stops working at once."""
        with self.store.tx.write():
            if not self.store.grants.revoke_family(grant, now):
                raise UnknownGrant(grant)
