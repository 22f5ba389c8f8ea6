"""Mint and take the tokens of mailed links: verify an address, reset a password, "not me".

A token is random (security/tokens.py), kept as its sha256, good once and for a while. A reset
token is also bound to the password hash it was made under, as Django's PasswordResetToken-
Generator binds its tokens: a password changed since (by the owner, the operator, or another
reset) ends it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from ..mail_tables import MailToken
from ..models import User
from ..security import tokens
from ..store import Store
from .errors import MailTokenInvalid


class Purpose(StrEnum):
    """Name what following a mailed link does."""

    VERIFY = "verify"
    RESET = "reset"
    NOT_ME = "not_me"


#: How long a verification link works.
VERIFY_LIFETIME = timedelta(days=2)

#: How long a new sign-in's "this wasn't me" link works.
NOT_ME_LIFETIME = timedelta(days=7)


def password_digest(password_hash: str) -> str:
    """Return what a reset token keeps of the password hash it is bound to."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


class Links:
    """Mint tokens for mailed links, and find and take them when they are followed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def mint(
        self,
        user_id: int,
        purpose: Purpose,
        now: datetime,
        lifetime: timedelta,
        address: str | None = None,
        password_hash: str | None = None,
    ) -> str:
        """Return a new token for a link; kept as its digest, in the caller's write or its own."""
        token = tokens.new_token()
        bound = None if password_hash is None else password_digest(password_hash)
        with self.store.tx.write(join=True):
            self.store.mail.add_token(
                MailToken(
                    token_digest=tokens.digest(token),
                    user_id=user_id,
                    purpose=purpose.value,
                    address=address,
                    password_digest=bound,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return token

    def find(self, token: str, purpose: Purpose, now: datetime) -> MailToken | None:
        """Return the live token of ``purpose``, or None (unknown, used, expired, superseded)."""
        record = self.store.mail.token(tokens.digest(token))
        if record is None or record.purpose != purpose.value or now >= record.expires_at:
            return None
        if record.password_digest is not None:
            user = self.store.users.by_id(record.user_id)
            if user is None or password_digest(user.password_hash) != record.password_digest:
                return None
        return record

    def owned(self, token: str, purpose: Purpose, now: datetime) -> tuple[MailToken, User]:
        """Return the live token of ``purpose`` and its account, or raise MailTokenInvalid."""
        record = self.find(token, purpose, now)
        user = self.store.users.by_id(record.user_id) if record is not None else None
        if record is None or user is None:
            raise MailTokenInvalid()
        return record, user

    def take(self, record: MailToken) -> bool:
        """Use the token once, in the caller's write; say whether this call did."""
        return self.store.mail.take_token(record.id)
