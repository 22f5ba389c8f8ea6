"""Map each refusal by the rules, once, to its status and code; pages and API answer from it.

The message is the error's own (``str(exc)``), and so is the input it is about (``field``):
a page shows the message under that input, the API sends it as the problem's ``detail``.
"""

from __future__ import annotations

from ..errors import (
    AccountChanged,
    AccountError,
    ChallengeGone,
    InvalidCredentials,
    InvalidPasskeyName,
    InvalidTokenRequest,
    InvalidUsername,
    PasskeyRefused,
    PasswordChangeRequired,
    ReauthenticationRequired,
    SecondFactorExists,
    SecondFactorNeeded,
    SessionRequired,
    SignupClosed,
    Throttled,
    TooManyTokens,
    UsernameTaken,
    WeakPassword,
    WrongCode,
    WrongPassword,
    WrongSecondFactor,
)
from ..mail.errors import EmailTaken, InvalidEmail, MailOff, MailTokenInvalid
from .answers import CHALLENGE, Refusal

#: The status and stable code of each refusal by the rules.
STATUS_AND_CODE: dict[type[AccountError], tuple[int, str]] = {
    InvalidCredentials: (401, "bad_credentials"),
    WrongSecondFactor: (401, "bad_credentials"),
    AccountChanged: (401, "not_authenticated"),
    WrongPassword: (403, "bad_credentials"),
    InvalidUsername: (422, "invalid_username"),
    WeakPassword: (422, "weak_password"),
    InvalidTokenRequest: (422, "validation"),
    UsernameTaken: (409, "name_taken"),
    TooManyTokens: (409, "too_many_tokens"),
    SignupClosed: (403, "signup_closed"),
    PasswordChangeRequired: (403, "password_change_required"),
    SessionRequired: (403, "session_required"),
    Throttled: (429, "throttled"),
    ReauthenticationRequired: (403, "reauthentication_required"),
    WrongCode: (422, "wrong_code"),
    SecondFactorExists: (409, "second_factor_exists"),
    SecondFactorNeeded: (409, "second_factor_needed"),
    ChallengeGone: (401, "challenge_expired"),
    PasskeyRefused: (401, "passkey_refused"),
    InvalidPasskeyName: (422, "validation"),
    InvalidEmail: (422, "invalid_email"),
    EmailTaken: (409, "email_taken"),
    MailTokenInvalid: (410, "reset_token_invalid"),
    MailOff: (404, "not_found"),
}


def refusal(exc: AccountError) -> Refusal:
    """Return the answer to a refusal by the rules."""
    status, code = STATUS_AND_CODE.get(type(exc), (400, "refused"))
    found = Refusal(status, code, str(exc), field=exc.field)
    if isinstance(exc, InvalidCredentials | AccountChanged | ChallengeGone | PasskeyRefused):
        found.headers["WWW-Authenticate"] = CHALLENGE
    elif isinstance(exc, Throttled):
        found.headers["Retry-After"] = str(exc.retry_after)
        found.extra["retry_after"] = exc.retry_after
    elif isinstance(exc, WeakPassword):
        found.extra["reason"] = exc.reason
    elif isinstance(exc, InvalidTokenRequest):
        found.extra["errors"] = [{"field": exc.field, "message": str(exc)}]
    return found
