"""Hold the rows a signed-in request's lookup reads, as frozen values rather than ORM objects.

Not ORM objects: the lookup that every signed-in request makes (store/credentials.py) reads one
row into plain frozen values, with no identity map or unit of work to set up and tear down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    """Hold a user's columns as a signed-in request's lookup read them.

    The hash is kept so that a write made on this request's behalf can check the user is still
    as read.
    """

    id: int
    username: str
    username_key: str
    password_hash: str
    disabled: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None
    #: The names of the user's groups, sorted, read by the same statement as the rest.
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Hold a session's columns as a signed-in request's lookup read them."""

    id: int
    user_id: int
    kind: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    #: The second factor its login proved (models.SecondFactor's value), or None.
    second_factor: str | None
    #: When its owner last proved who they are (sudo mode), or None.
    authenticated_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenSnapshot:
    """Hold a personal token's columns as a signed-in request's lookup read them."""

    id: int
    user_id: int
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
