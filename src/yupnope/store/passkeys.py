"""Query a user's passkeys and the challenges of WebAuthn ceremonies under way.

As in store/factors.py, each single use is one conditional statement whose row count says
whether it won: a challenge's row goes once, and a passkey's counter moves only forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session as OrmSession

from ..models import Passkey, PasskeyChallenge


class PasskeyRows:
    """Read and write passkeys and their ceremonies' challenges."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def add(self, record: Passkey) -> Passkey:
        """Insert a passkey and return it with its id."""
        self.session.add(record)
        self.session.flush()
        return record

    def of_user(self, user_id: int) -> Sequence[Passkey]:
        """Return the user's passkeys, oldest first."""
        query = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.id)
        return self.session.scalars(query).all()

    def count_of(self, user_id: int) -> int:
        """Return how many passkeys the user has."""
        query = select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        return self.session.scalar(query) or 0

    def by_credential_id(self, credential_id: str) -> Passkey | None:
        """Return the passkey whose credential id (base64url) is ``credential_id``, or None."""
        query = select(Passkey).where(Passkey.credential_id == credential_id)
        return self.session.scalar(query)

    def user_handle_of(self, user_id: int) -> str | None:
        """Return the user handle the user's passkeys share, or None without a passkey."""
        query = select(Passkey.user_handle).where(Passkey.user_id == user_id).limit(1)
        return self.session.scalar(query)

    def rename(self, user_id: int, passkey_id: int, name: str) -> bool:
        """Rename one of the user's passkeys; return whether it was there."""
        result = self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
            .values(name=name)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def delete(self, user_id: int, passkey_id: int) -> Passkey | None:
        """Delete one of the user's passkeys; return it, or None when it was not there."""
        found = self.session.scalar(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        )
        if found is None:
            return None
        result = self.session.execute(delete(Passkey).where(Passkey.id == passkey_id))
        return found if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def delete_of(self, user_id: int) -> int:
        """Delete every passkey of the user; return how many went."""
        result = self.session.execute(delete(Passkey).where(Passkey.user_id == user_id))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def record_use(self, passkey_id: int, sign_count: int, backed_up: bool, now: datetime) -> bool:
        """Record a use whose counter is ``sign_count``; False when the counter did not go up.

        The counter must grow, unless it is zero both here and in the use: an authenticator
        that keeps no counter sends zero every time (WebAuthn Level 3, 6.1.1). The condition
        and the write are one statement, so two uses at once cannot both pass with one count.
        """
        grows = Passkey.sign_count < sign_count
        if sign_count == 0:
            grows = Passkey.sign_count == 0
        result = self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, grows)
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def add_challenge(self, digest: str, binding: str, expires_at: datetime) -> None:
        """Insert a ceremony's challenge, by its digest, bound to ``binding``."""
        record = PasskeyChallenge(challenge_digest=digest, binding=binding, expires_at=expires_at)
        self.session.add(record)
        self.session.flush()

    def challenge(self, digest: str, now: datetime) -> PasskeyChallenge | None:
        """Return the unexpired challenge whose digest is ``digest``, or None."""
        query = select(PasskeyChallenge).where(
            PasskeyChallenge.challenge_digest == digest, PasskeyChallenge.expires_at > now
        )
        return self.session.scalar(query)

    def take_challenge(self, challenge_id: int) -> bool:
        """Delete a ceremony's challenge; return whether this call was the one that did."""
        result = self.session.execute(
            delete(PasskeyChallenge).where(PasskeyChallenge.id == challenge_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def delete_expired_challenges(self, now: datetime) -> int:
        """Delete the challenges of ceremonies past their end."""
        result = self.session.execute(
            delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
