"""Refuse a value no setting can take, in one line that names the setting.

Kept apart from config.py, which holds each setting's definition: here is what each may be.
The checks read the settings' values by name, so this module needs nothing of config.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .access import AccessRules
from .errors import ConfigError
from .setting_names import env_name

#: The values COOKIE_SECURE takes.
COOKIE_SECURE_CHOICES = ("auto", "always", "never")

#: The values SECOND_FACTOR takes.
SECOND_FACTOR_CHOICES = ("optional", "required")

#: Whether accounts have an email address: none, one they may give, or one they must.
EMAIL_CHOICES = ("off", "optional", "required")

#: The forms of the log's lines: one line of text, or one JSON object.
LOG_FORMAT_CHOICES = ("text", "json")

#: The words METRICS takes besides an address of its own (``HOST:PORT``).
METRICS_CHOICES = ("off", "on")

#: The schemes of ``smtp_url``: plain (local relays), STARTTLS, and TLS from the start.
SMTP_SCHEMES = ("smtp://", "smtp+starttls://", "smtps://")

#: The URL schemes redis-py understands: plain TCP, TLS, and a Unix socket.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

#: Settings that count something and so must be at least 1.
POSITIVE = (
    *("session_idle_seconds", "session_absolute_seconds", "max_content_length"),
    *("argon2_memory_kib", "argon2_time_cost", "argon2_parallelism"),
    *("throttle_base_delay_seconds", "throttle_max_delay_seconds"),
    *("throttle_account_limit", "throttle_account_window_seconds"),
    *("throttle_address_limit", "throttle_address_window_seconds"),
    *("throttle_global_limit", "throttle_global_window_seconds"),
    *("throttle_signup_limit", "throttle_signup_window_seconds"),
    *("device_cookie_days", "audit_retention_days", "audit_max_events"),
    *("database_timeout_seconds", "database_statement_timeout_ms", "password_reset_seconds"),
)

#: Settings where 0 means "the default that fits the process".
NOT_NEGATIVE = ("throttle_free_failures", "hash_concurrency", "database_pool_size")

#: Settings that take one of a few words, with those words.
CHOICES = {
    "cookie_secure": COOKIE_SECURE_CHOICES,
    "second_factor": SECOND_FACTOR_CHOICES,
    "email": EMAIL_CHOICES,
    "log_format": LOG_FORMAT_CHOICES,
}


def check(values: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first setting in ``values`` (by name) that is out of bounds."""
    for name, choices in CHOICES.items():
        if values[name] not in choices:
            raise ConfigError(
                f"{env_name(name)} must be one of {', '.join(choices)}, not {values[name]!r}"
            )
    for name in POSITIVE:
        if values[name] < 1:
            raise ConfigError(f"{env_name(name)} must be at least 1, not {values[name]}")
    if not 0 <= values["session_touch_seconds"] < values["session_idle_seconds"]:
        raise ConfigError(
            f"{env_name('session_touch_seconds')} must be at least 0 and less than "
            f"{env_name('session_idle_seconds')}, or busy users would be logged out as idle"
        )
    for name in NOT_NEGATIVE:
        if values[name] < 0:
            raise ConfigError(f"{env_name(name)} must be 0 or more, not {values[name]}")
    if values["redis_url"] and not values["redis_url"].startswith(REDIS_SCHEMES):
        # Not echoed: the URL may hold Redis's password.
        raise ConfigError(f"{env_name('redis_url')} must start with {', '.join(REDIS_SCHEMES)}")
    if not values["redis_key_prefix"]:
        raise ConfigError(f"{env_name('redis_key_prefix')} must not be empty")
    if not values["hash_wait_seconds"] > 0:
        raise ConfigError(f"{env_name('hash_wait_seconds')} must be more than 0")
    if not isinstance(values["access"], AccessRules):
        raise ConfigError("access must be the [access] table or AccessRules")
    if values["smtp_url"] and not values["smtp_url"].startswith(SMTP_SCHEMES):
        # Not echoed: the URL may hold the mail server's password.
        raise ConfigError(f"{env_name('smtp_url')} must start with {', '.join(SMTP_SCHEMES)}")
    if values["email"] != "off":
        needed = ("smtp_url", "mail_from", "public_url")
        missing = [env_name(name) for name in needed if not values[name].strip()]
        if missing:
            raise ConfigError(
                f"{env_name('email')}={values['email']} needs {', '.join(missing)}: mail is sent "
                "through that server, from that address, with links to that URL"
            )
    if values["argon2_memory_kib"] < 8 * values["argon2_parallelism"]:
        raise ConfigError(f"{env_name('argon2_memory_kib')} must be at least 8 per lane")


def metrics_address(value: str) -> tuple[str, int] | None:
    """Return the ``HOST:PORT`` the METRICS setting gives its listener, or None for a word.

    An IPv6 host is written in brackets (``[::1]:9100``), as in a URL, and given without them.
    """
    if value in METRICS_CHOICES:
        return None
    host, _, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif any(mark in host for mark in ":[]"):
        host = ""
    if not host or not (port.isascii() and port.isdigit()):
        raise ConfigError(
            f"{env_name('metrics')} must be off, on or HOST:PORT ([::1]:9100 for IPv6), "
            f"not {value!r}"
        )
    if not 0 < int(port) < 65536:
        raise ConfigError(f"{env_name('metrics')}: the port must be 1 to 65535, not {port}")
    return host, int(port)
