"""Query email: accounts' addresses, mailed links' tokens, and the outbox.

A token is taken by one DELETE whose row count says whether this call won, and an outbox row
is leased by one conditional UPDATE, so two workers never use one link twice nor send one mail
twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from ..mail_tables import EmailAddress, MailToken, OutgoingMail


class MailRows:
    """Read and write addresses, mailed links' tokens and the outbox."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def address_of(self, user_id: int) -> EmailAddress | None:
        """Return the user's address, verified or not, or None."""
        return self.session.get(EmailAddress, user_id)

    def by_address(self, address_key: str) -> EmailAddress | None:
        """Return the address row of ``address_key`` (lower case), or None."""
        query = select(EmailAddress).where(EmailAddress.address_key == address_key)
        return self.session.scalars(query).one_or_none()

    def verified_by_user(self) -> dict[int, str]:
        """Return every verified address, as typed, by its account's id."""
        query = select(EmailAddress.user_id, EmailAddress.address).where(
            EmailAddress.verified_at.is_not(None)
        )
        return {user_id: address for user_id, address in self.session.execute(query)}

    def taken_among(self, address_keys: Sequence[str]) -> set[str]:
        """Return those of ``address_keys`` (lower case) that an account has, verified or not."""
        found: set[str] = set()
        for start in range(0, len(address_keys), 250):
            chunk = address_keys[start : start + 250]
            query = select(EmailAddress.address_key).where(EmailAddress.address_key.in_(chunk))
            found.update(self.session.scalars(query))
        return found

    def set_address(
        self, user_id: int, address: str, verified_at: datetime | None, now: datetime
    ) -> None:
        """Give the user ``address`` in place of any they had (a duplicate key if it is taken)."""
        self.session.execute(delete(EmailAddress).where(EmailAddress.user_id == user_id))
        self.session.add(
            EmailAddress(
                user_id=user_id,
                address=address,
                address_key=address.lower(),
                verified_at=verified_at,
                created_at=now,
            )
        )
        self.session.flush()

    def verify(self, user_id: int, address_key: str, now: datetime) -> bool:
        """Mark the user's address verified if it is still ``address_key``; say if it was."""
        query = (
            update(EmailAddress)
            .where(EmailAddress.user_id == user_id, EmailAddress.address_key == address_key)
            .values(verified_at=now)
        )
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def remove_address(self, user_id: int) -> bool:
        """Delete the user's address; say whether there was one."""
        result = self.session.execute(delete(EmailAddress).where(EmailAddress.user_id == user_id))
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def add_token(self, record: MailToken) -> None:
        """Insert a mailed link's token."""
        self.session.add(record)
        self.session.flush()

    def token(self, digest: str) -> MailToken | None:
        """Return the token of ``digest``, or None."""
        query = select(MailToken).where(MailToken.token_digest == digest)
        return self.session.scalars(query).one_or_none()

    def take_token(self, token_id: int) -> bool:
        """Delete a token for its one use; say whether this call did."""
        result = self.session.execute(delete(MailToken).where(MailToken.id == token_id))
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def drop_tokens(self, user_id: int, purposes: Sequence[str]) -> int:
        """Delete the user's tokens of ``purposes``; return how many."""
        query = delete(MailToken).where(
            MailToken.user_id == user_id, MailToken.purpose.in_(purposes)
        )
        result = self.session.execute(query)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def queue(self, record: OutgoingMail) -> None:
        """Insert a mail to send."""
        self.session.add(record)
        self.session.flush()

    def due(self, now: datetime, limit: int) -> Sequence[OutgoingMail]:
        """Return mail waiting to be sent now, oldest first, not leased by a live sender."""
        query = (
            select(OutgoingMail)
            .where(
                OutgoingMail.sent_at.is_(None),
                OutgoingMail.next_attempt_at <= now,
                or_(OutgoingMail.leased_until.is_(None), OutgoingMail.leased_until <= now),
            )
            .order_by(OutgoingMail.id)
            .limit(limit)
        )
        return self.session.scalars(query).all()

    def lease(self, mail_id: int, now: datetime, until: datetime) -> bool:
        """Take a mail for sending until ``until``, unless another sender holds it; say if so."""
        query = (
            update(OutgoingMail)
            .where(
                OutgoingMail.id == mail_id,
                OutgoingMail.sent_at.is_(None),
                or_(OutgoingMail.leased_until.is_(None), OutgoingMail.leased_until <= now),
            )
            .values(leased_until=until, attempts=OutgoingMail.attempts + 1)
        )
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def sent(self, mail_id: int, now: datetime) -> None:
        """Record that a mail went (or that nobody was there to write to)."""
        query = (
            update(OutgoingMail)
            .where(OutgoingMail.id == mail_id)
            .values(sent_at=now, leased_until=None, last_error=None)
        )
        self.session.execute(query)

    def failed(self, mail_id: int, error: str, retry_at: datetime) -> None:
        """Record why a mail did not go, and when to try again."""
        query = (
            update(OutgoingMail)
            .where(OutgoingMail.id == mail_id)
            .values(leased_until=None, last_error=error[:500], next_attempt_at=retry_at)
        )
        self.session.execute(query)

    def outbox(self) -> Sequence[OutgoingMail]:
        """Return every mail in the outbox, oldest first."""
        return self.session.scalars(select(OutgoingMail).order_by(OutgoingMail.id)).all()

    def delete_expired(self, now: datetime, sent_before: datetime) -> int:
        """Delete expired tokens and mail sent before ``sent_before``; return how many."""
        tokens = self.session.execute(delete(MailToken).where(MailToken.expires_at <= now))
        mail = self.session.execute(delete(OutgoingMail).where(OutgoingMail.sent_at < sent_before))
        deleted: int = tokens.rowcount + mail.rowcount  # type: ignore[attr-defined]
        return deleted
