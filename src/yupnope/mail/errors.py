"""Name the ways email can be refused: an address that cannot be one, or is taken; a dead link."""

from __future__ import annotations

from ..errors import AccountError


class InvalidEmail(AccountError):
    """Refuse an address that cannot be one (no ``@``, spaces, over 254 characters)."""

    field = "email"


class EmailTaken(AccountError):
    """Refuse an address another account has verified (compared case-insensitively)."""

    field = "email"

    def __init__(self) -> None:
        super().__init__("That email address belongs to another account.")


class MailTokenInvalid(AccountError):
    """Refuse a mailed link that was used, expired, or superseded (a password changed since)."""

    def __init__(self) -> None:
        super().__init__(
            "That link no longer works: it was used already, it expired, or the password "
            "changed since it was sent. Ask for a new one."
        )


class MailOff(AccountError):
    """Refuse what needs email on a server whose accounts have no addresses (``email=off``)."""

    def __init__(self) -> None:
        super().__init__("This server has no email addresses: ask whoever runs it for help.")
