"""Name every way an account operation can be refused, with the data a caller needs to answer."""

from __future__ import annotations

from datetime import timedelta


class AccountError(Exception):
    """Base of every refusal by the account rules; ``str(exc)`` is a message fit for a person.

    ``field`` names the input the refusal is about (a form field, a body member), if any.
    """

    field: str | None = None


class InvalidCredentials(AccountError):
    """Refuse a login: unknown name, wrong password or disabled account, never saying which."""

    def __init__(self) -> None:
        super().__init__("The name or password is not right.")


class AccountChanged(AccountError):
    """Refuse an owner's change because the account changed under it since it was checked.

    An operator removed, disabled or re-passworded the account meanwhile: the operator's
    action wins, and the credential the request came with has ended with it.
    """

    def __init__(self) -> None:
        super().__init__("Your account was changed meanwhile. Log in again.")


class InvalidUsername(AccountError):
    """Refuse a name that cannot be an account name: empty, too long, or with hidden characters."""

    field = "username"


class UsernameTaken(AccountError):
    """Refuse a new account whose name, compared case-insensitively, already belongs to another."""

    field = "username"

    def __init__(self, username: str) -> None:
        super().__init__(f"The name {username!r} is taken.")
        self.username = username


class WeakPassword(AccountError):
    """Refuse a new password that fails the policy; ``reason`` is a stable machine-readable word."""

    def __init__(self, reason: str, message: str, field: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class WrongPassword(AccountError):
    """Refuse an owner's action whose confirming password is not theirs."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownUser(AccountError):
    """Report that an operator named a user that does not exist (never used on the login path)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"No user is named {username!r}.")
        self.username = username


class InvalidGroupName(AccountError):
    """Refuse a name that cannot be a group's: see groupnames.py for the shape."""

    field = "group"


class UnknownGroup(AccountError):
    """Report that an operator named a group that does not exist."""

    field = "group"

    def __init__(self, name: str) -> None:
        super().__init__(f"No group is named {name!r}.")
        self.name = name


class GroupExists(AccountError):
    """Refuse a new group whose name another group has."""

    field = "group"

    def __init__(self, name: str) -> None:
        super().__init__(f"The group {name!r} exists already.")
        self.name = name


class GroupNotEmpty(AccountError):
    """Refuse to remove a group that has members, unless the operator says to end them too."""

    field = "group"

    def __init__(self, name: str, members: int) -> None:
        super().__init__(
            f"The group {name!r} has {members} member{'s' if members != 1 else ''}; take them "
            "out first, or remove it with --force, which ends their membership."
        )
        self.name = name
        self.members = members


class GroupChangeConflict(AccountError):
    """Refuse a change of a user's groups that both adds and removes one group."""

    field = "group"

    def __init__(self, name: str) -> None:
        super().__init__(f"The group {name!r} is named both to add and to remove.")
        self.name = name


class ImportFileError(AccountError):
    """Refuse a whole import file: it is unreadable, malformed, or one of its entries is bad."""


class SignupClosed(AccountError):
    """Refuse a sign-up because the operator has closed sign-up."""

    def __init__(self) -> None:
        super().__init__("Sign-up is closed here. Ask the operator for an account.")


class PasswordChangeRequired(AccountError):
    """Refuse an action until the user replaces a password that fails today's policy."""

    def __init__(self) -> None:
        super().__init__("Choose a new password first: the current one is too weak.")


class ReauthenticationRequired(AccountError):
    """Refuse a change that sudo mode guards: the owner has not proved who they are lately."""

    def __init__(self, window: timedelta) -> None:
        minutes = int(window.total_seconds() // 60)
        super().__init__(
            f"Confirm your password first: this change needs it within the last {minutes} minutes."
        )


class WrongSecondFactor(InvalidCredentials):
    """Refuse a login's second step: the code is wrong, or was used already."""

    def __init__(self) -> None:
        AccountError.__init__(self, "That code is not right, or it was used already.")


class WrongCode(AccountError):
    """Refuse an authenticator app's first code, which does not confirm its enrolment."""

    field = "code"

    def __init__(self) -> None:
        super().__init__(
            "That code is not right. Check that the app's clock is right, and type the code it "
            "shows now."
        )


class SecondFactorNeeded(AccountError):
    """Refuse a change that needs a second factor the account does not have."""


class SecondFactorExists(AccountError):
    """Refuse to start an authenticator app's enrolment while one is in use: remove it first."""

    def __init__(self) -> None:
        super().__init__("An authenticator app is set up already. Remove it first.")


class ChallengeGone(AccountError):
    """Refuse a login's second step whose first is unknown, expired or used: start again."""

    def __init__(self) -> None:
        super().__init__("This login has expired. Enter your name and password again.")


class PasskeyRefused(AccountError):
    """Refuse a passkey's answer: unknown, not this account's, expired, used, or not verified.

    One message whatever failed, as for a wrong password; the audit log says which.
    """

    def __init__(self, message: str = "That passkey was not accepted. Try again.") -> None:
        super().__init__(message)


class InvalidPasskeyName(AccountError):
    """Refuse a passkey's name: empty, too long, or with control characters."""

    field = "name"


class SessionRequired(AccountError):
    """Refuse a new personal token asked for with a personal token: only a login may make one."""

    def __init__(self) -> None:
        super().__init__("Log in with a password to make tokens, not with a token.")


class TooManyTokens(AccountError):
    """Refuse a new personal token because the user already holds as many as they may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"You hold {limit} tokens, the most allowed. Revoke one first.")
        self.limit = limit


class InvalidTokenRequest(AccountError):
    """Refuse a personal token's name or lifetime; ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Throttled(AccountError):
    """Refuse an attempt because too many failed before it; ``retry_after`` is in seconds.

    Whether the name exists or the password is right makes no difference to this answer.
    """

    def __init__(self, retry_after: int, counter: tuple[str, str] | None = None) -> None:
        super().__init__(f"Too many attempts. Try again in {_duration(retry_after)}.")
        self.retry_after = retry_after
        #: The throttle counter (scope, key) whose limit or wait refused the attempt.
        self.counter = counter


class Busy(Exception):
    """Refuse an attempt because this process is already checking as many passwords as it may.

    Not an AccountError: nothing is wrong with the account or the input, so no form may show it
    as a refusal of what was typed; it is a 503 with Retry-After.
    """

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("The server is busy checking other logins. Try again in a moment.")
        self.retry_after = retry_after


class ConfigError(Exception):
    """Report a setting whose value cannot be used; the message names the setting."""


class SchemaError(Exception):
    """Refuse a database whose schema this code cannot bring up to date."""


class CopyError(Exception):
    """Refuse or undo a copy of the database: a target in use, or a count that came out wrong."""


def _duration(seconds: int) -> str:
    """Return ``seconds`` in words a person reads at a glance, rounded up."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 3600:
        minutes = -(-seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if seconds < 2 * 86400:
        hours = -(-seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = -(-seconds // 86400)
    return f"{days} days"
