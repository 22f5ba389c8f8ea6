"""Declare the tables of email: accounts' addresses, the tokens mailed links carry, the outbox.

An address lives beside its account rather than in ``users``, so the lookup every signed-in
request makes reads nothing more. A mailed link's token is kept as its sha256 only. The outbox
holds what is to be sent, not the mail itself: each mail is written when it is sent, and the
token of its link minted then, so no live token waits in clear in a table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime


class EmailAddress(Base):
    """Record an account's email address and whether its owner proved they read it."""

    __tablename__ = "email_addresses"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: As the person typed it (RFC 5321 4.5.3.1.3: at most 254 characters).
    address: Mapped[str] = mapped_column(String(254))
    #: Lower case: one address is one account, whatever the case it is typed in.
    address_key: Mapped[str] = mapped_column(String(254), unique=True)
    #: When its owner followed the verification link (or the operator set it); None before.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MailToken(Base):
    """Record the token of a mailed link, by its digest: verify, change, reset, not me."""

    __tablename__ = "mail_tokens"
    __table_args__ = (Index("ix_mail_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: What following the link does (mailer.Purpose).
    purpose: Mapped[str] = mapped_column(String(16))
    #: The address a verification or change is about.
    address: Mapped[str | None] = mapped_column(String(254), default=None)
    #: For a reset: sha256 of the password hash it was made under, so a changed password ends
    #: it (as Django's PasswordResetTokenGenerator binds its tokens).
    password_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutgoingMail(Base):
    """Record one mail to send: which letter, to whom, about what; when it was sent."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The letter (a template under templates/mail/).
    letter: Mapped[str] = mapped_column(String(32))
    #: Where it goes: an address, or for a reset request the address as typed, which may be
    #: nobody's (the mail is then never written).
    recipient: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(default=None)
    #: What the letter says beyond the account: JSON (a sign-in's time, address, browser).
    details: Mapped[str] = mapped_column(Text(), default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: A sender working on it holds it until then; another takes it over only after.
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: When it was handed to the mail server, or dropped (nobody to write to).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
