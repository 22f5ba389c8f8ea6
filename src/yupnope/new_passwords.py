"""Say whether a new password may be chosen, and why not, for a sign-up or a change."""

from __future__ import annotations

from .errors import WeakPassword
from .security import passwords


def acceptable(password: str, username: str, field: str) -> str:
    """Return the normalised new password, or raise WeakPassword saying why it is refused.

    ``field`` names the input the password came in, for the refusal to point at.
    """
    secret = passwords.normalize(password)
    if secret is None and len(password) > passwords.MAX_LENGTH:
        raise WeakPassword("too_long", f"Use at most {passwords.MAX_LENGTH} characters.", field)
    if secret is None:
        raise WeakPassword("not_text", "The password contains something that is not text.", field)
    failure = passwords.policy_failure(secret, username)
    if failure is not None:
        raise WeakPassword(failure.reason, failure.message, field)
    return secret
