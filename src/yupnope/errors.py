"""Name every way an account operation can be refused, with the data a caller needs to answer."""

from __future__ import annotations


class AccountError(Exception):
    """Base of every refusal by the account rules; ``str(exc)`` is a message fit for a person."""


class InvalidCredentials(AccountError):
    """Refuse a login: unknown name, wrong password or disabled account, never saying which."""

    def __init__(self) -> None:
        super().__init__("The name or password is not right.")


class InvalidUsername(AccountError):
    """Refuse a name that cannot be an account name: empty, too long, or with hidden characters."""


class UsernameTaken(AccountError):
    """Refuse a new account whose name, compared case-insensitively, already belongs to another."""

    def __init__(self, username: str) -> None:
        super().__init__(f"The name {username!r} is taken.")
        self.username = username


class WeakPassword(AccountError):
    """Refuse a new password that fails the policy; ``reason`` is a stable machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownUser(AccountError):
    """Report that an operator named a user that does not exist (never used on the login path)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"No user is named {username!r}.")
        self.username = username


class ImportFileError(AccountError):
    """Refuse a whole import file: it is unreadable, malformed, or one of its entries is bad."""


class SignupClosed(AccountError):
    """Refuse a sign-up because the operator has closed sign-up."""

    def __init__(self) -> None:
        super().__init__("Sign-up is closed here. Ask the operator for an account.")
