"""Name the kinds of event the log records: what happened to an account, and who did it."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """Name the kinds of event the log records."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    LOGOUT_EVERYWHERE = "logout_everywhere"
    SIGNUP = "signup"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name, not a password)
    PASSWORD_CHECK_FAILED = "password_check_failed"  # noqa: S105 (an event name, not a password)
    ACCOUNT_DELETED = "account_deleted"
    ADMIN_USER_ADDED = "admin_user_added"
    ADMIN_USERS_IMPORTED = "admin_users_imported"
    ADMIN_USERS_EXPORTED = "admin_users_exported"
    ADMIN_USER_REMOVED = "admin_user_removed"
    ADMIN_PASSWORD_SET = "admin_password_set"  # noqa: S105 (an event name, not a password)
    ADMIN_USER_DISABLED = "admin_user_disabled"
    ADMIN_USER_ENABLED = "admin_user_enabled"
    ADMIN_USER_UNLOCKED = "admin_user_unlocked"
    LOGIN_THROTTLED = "login_throttled"
    SIGNUP_THROTTLED = "signup_throttled"
    TOKEN_CREATED = "token_created"  # noqa: S105 (an event name, not a token)
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 (an event name, not a token)
    SESSION_ENDED = "session_ended"
    ADMIN_GROUP_ADDED = "admin_group_added"
    ADMIN_GROUP_REMOVED = "admin_group_removed"
    ADMIN_GROUP_MEMBER_ADDED = "admin_group_member_added"
    ADMIN_GROUP_MEMBER_REMOVED = "admin_group_member_removed"
    TOTP_ENABLED = "totp_enabled"
    TOTP_REMOVED = "totp_removed"
    RECOVERY_CODES_MADE = "recovery_codes_made"
    RECOVERY_CODE_USED = "recovery_code_used"
    SECOND_FACTOR_FAILED = "second_factor_failed"
    SECOND_FACTOR_THROTTLED = "second_factor_throttled"
    ADMIN_SECOND_FACTORS_RESET = "admin_second_factors_reset"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_USED = "passkey_used"
    PASSKEY_FAILED = "passkey_failed"
    PASSKEY_CLONE_SUSPECTED = "passkey_clone_suspected"
    NOT_ME = "not_me"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (an event name, not a password)
    EMAIL_VERIFIED = "email_verified"
    EMAIL_REMOVED = "email_removed"
    ADMIN_EMAIL_SET = "admin_email_set"
    APP_SIGNED_IN = "app_signed_in"
    APP_SIGNED_OUT = "app_signed_out"
    ADMIN_APP_SIGNED_OUT = "admin_app_signed_out"
