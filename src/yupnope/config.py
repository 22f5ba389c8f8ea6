"""Define every setting once, with its default, and load the values in force.

A value comes from, in rising order of precedence: the default below, the instance file
``<instance>/yupnope.toml`` (keys in lower case without the prefix, ``cookie_secure = "always"``),
the environment (``YUPNOPE_COOKIE_SECURE=always``), and last a test's own mapping.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "YUPNOPE_"

#: Folder for the database, the secret key, ``yupnope.toml`` and template overrides.
INSTANCE_PATH = "./instance"

#: SQLAlchemy URL of the database; empty means ``sqlite:///<instance>/yupnope.db``.
DATABASE_URL = ""

#: Database connections one process keeps; 0 means one per request thread under ``serve``, else 5.
DATABASE_POOL_SIZE = 0

#: Seconds to wait for a database connection before the request fails (503).
DATABASE_TIMEOUT_SECONDS = 5

#: Milliseconds one statement may run on PostgreSQL before it is cancelled.
DATABASE_STATEMENT_TIMEOUT_MS = 5000

#: Redis URL for the throttle counters (``redis://host:6379/0``); empty keeps them in the database.
REDIS_URL = ""

#: Start of every Redis key, so several deployments can share one Redis.
REDIS_KEY_PREFIX = "yupnope"

#: Key for signed values; empty means generated once and kept in ``<instance>/secret_key``.
SECRET_KEY = ""

#: ``auto`` marks cookies Secure when the request came over HTTPS; ``always`` or ``never`` force it.
COOKIE_SECURE = "auto"

#: Name of the session cookie.
SESSION_COOKIE_NAME = "yupnope_session"

#: Seconds a session may stay unused before it ends.
SESSION_IDLE_SECONDS = 12 * 3600

#: Seconds after login at which a session ends however busy it is.
SESSION_ABSOLUTE_SECONDS = 14 * 24 * 3600

#: Seconds between two writes of a session's last-seen time; spares a write on every page view.
SESSION_TOUCH_SECONDS = 60

#: Argon2id memory cost in KiB (OWASP Password Storage Cheat Sheet: 19 MiB).
ARGON2_MEMORY_KIB = 19456

#: Argon2id iterations (OWASP: 2 with 19 MiB).
ARGON2_TIME_COST = 2

#: Argon2id lanes (OWASP: 1).
ARGON2_PARALLELISM = 1

#: Whether anyone may create an account at ``/signup``.
SIGNUP_OPEN = True

#: Largest request body in bytes; a larger one gets 413 before it is read.
MAX_CONTENT_LENGTH = 64 * 1024

#: Failed logins an account (or a device) may have before each further one waits.
THROTTLE_FREE_FAILURES = 5

#: Seconds of the first wait; each further failure doubles it, up to the maximum below.
THROTTLE_BASE_DELAY_SECONDS = 1

#: Longest wait between two attempts on one account, in seconds.
THROTTLE_MAX_DELAY_SECONDS = 15 * 60

#: Failed logins one account may have in the window below (NIST SP 800-63B 5.2.2: at most 100).
THROTTLE_ACCOUNT_LIMIT = 100

#: Seconds over which an account's failures add up.
THROTTLE_ACCOUNT_WINDOW_SECONDS = 30 * 24 * 3600

#: Failed logins one client address (an IPv6 /64) may have in the window below.
THROTTLE_ADDRESS_LIMIT = 50

#: Seconds over which an address's failures add up.
THROTTLE_ADDRESS_WINDOW_SECONDS = 15 * 60

#: Failed logins the whole server accepts from clients without a device cookie per window below.
THROTTLE_GLOBAL_LIMIT = 1000

#: Seconds over which the global failures add up.
THROTTLE_GLOBAL_WINDOW_SECONDS = 5 * 60

#: Sign-up attempts one client address may make in the window below.
THROTTLE_SIGNUP_LIMIT = 20

#: Seconds over which an address's sign-up attempts add up.
THROTTLE_SIGNUP_WINDOW_SECONDS = 3600

#: Days a device cookie lets its browser skip the account's throttle (OWASP device cookies).
DEVICE_COOKIE_DAYS = 180

#: Proxies whose X-Forwarded-For is believed: empty for none, a count, or comma-separated CIDRs.
TRUSTED_PROXIES = ""

#: argon2 computations one process runs at once; 0 means the CPUs shared out among ``serve``'s
#: workers (2 CPUs, 2 workers: 1 each), and one per CPU for any other process.
HASH_CONCURRENCY = 0

#: Seconds a login waits for a free hashing slot before it gets 503.
HASH_WAIT_SECONDS = 0.5

#: Days login events are kept before they are pruned.
AUDIT_RETENTION_DAYS = 365

#: Other sites' origins (``https://app.example.com``, comma-separated) whose pages may call the
#: JSON API with bearer tokens; empty sends no CORS headers at all.
CORS_ORIGINS = ""

_TYPES: dict[str, type] = {
    "INSTANCE_PATH": str,
    "DATABASE_URL": str,
    "DATABASE_POOL_SIZE": int,
    "DATABASE_TIMEOUT_SECONDS": int,
    "DATABASE_STATEMENT_TIMEOUT_MS": int,
    "REDIS_URL": str,
    "REDIS_KEY_PREFIX": str,
    "SECRET_KEY": str,
    "COOKIE_SECURE": str,
    "SESSION_COOKIE_NAME": str,
    "SESSION_IDLE_SECONDS": int,
    "SESSION_ABSOLUTE_SECONDS": int,
    "SESSION_TOUCH_SECONDS": int,
    "ARGON2_MEMORY_KIB": int,
    "ARGON2_TIME_COST": int,
    "ARGON2_PARALLELISM": int,
    "SIGNUP_OPEN": bool,
    "MAX_CONTENT_LENGTH": int,
    "THROTTLE_FREE_FAILURES": int,
    "THROTTLE_BASE_DELAY_SECONDS": int,
    "THROTTLE_MAX_DELAY_SECONDS": int,
    "THROTTLE_ACCOUNT_LIMIT": int,
    "THROTTLE_ACCOUNT_WINDOW_SECONDS": int,
    "THROTTLE_ADDRESS_LIMIT": int,
    "THROTTLE_ADDRESS_WINDOW_SECONDS": int,
    "THROTTLE_GLOBAL_LIMIT": int,
    "THROTTLE_GLOBAL_WINDOW_SECONDS": int,
    "THROTTLE_SIGNUP_LIMIT": int,
    "THROTTLE_SIGNUP_WINDOW_SECONDS": int,
    "DEVICE_COOKIE_DAYS": int,
    "TRUSTED_PROXIES": str,
    "HASH_CONCURRENCY": int,
    "HASH_WAIT_SECONDS": float,
    "AUDIT_RETENTION_DAYS": int,
    "CORS_ORIGINS": str,
}

COOKIE_SECURE_CHOICES = ("auto", "always", "never")

#: The URL schemes redis-py understands: plain TCP, TLS, and a Unix socket.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ConfigError(Exception):
    """Report a setting whose value cannot be used; the message names the setting."""


def defaults() -> dict[str, Any]:
    """Return every setting at its documented default."""
    return {name: globals()[name] for name in _TYPES}


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the settings in force: defaults, instance file, environment, then overrides."""
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values = defaults()
    instance = Path(
        overrides.get("INSTANCE_PATH") or env.get(PREFIX + "INSTANCE_PATH") or INSTANCE_PATH
    ).resolve()
    values.update(_read_instance_file(instance / "yupnope.toml"))
    for name in _TYPES:
        if PREFIX + name in env:
            values[name] = _coerce(name, env[PREFIX + name], f"{PREFIX}{name}")
    for name, value in overrides.items():
        values[name] = value
    values["INSTANCE_PATH"] = str(instance)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance / 'yupnope.db'}"
    _validate(values)
    return values


def ensure_secret_key(instance: Path) -> str:
    """Return the key kept in ``<instance>/secret_key``, creating it (mode 0600) on first use.

    ``O_EXCL`` makes the creation safe when several worker processes start at once: one writes,
    the others read what it wrote.
    """
    path = instance / "secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        # Another process created the file an instant ago and has not written it yet.
        time.sleep(0.01)
    raise ConfigError(f"{path} is empty; delete it to have a new key generated")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(setting: str) -> list[Network]:
    """Return the CIDRs in a comma-separated TRUSTED_PROXIES, or raise ConfigError naming one."""
    networks = []
    for part in setting.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{PREFIX}TRUSTED_PROXIES must be a count or CIDRs, and {part.strip()!r} is neither"
            ) from None
    return networks


def cors_origins(setting: str) -> frozenset[str]:
    """Return the origins in a comma-separated CORS_ORIGINS, or raise ConfigError naming one.

    An origin is a scheme, a host and an optional port, as a browser sends it in ``Origin``.
    """
    origins = set()
    for part in setting.split(","):
        origin = part.strip()
        if not origin:
            continue
        try:
            parts = urlsplit(origin)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 (reading it raises ValueError for a bad port)
        except ValueError:
            valid = False
        if not valid or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigError(
                f"{PREFIX}CORS_ORIGINS must list origins like https://app.example.com, "
                f"and {origin!r} is not one"
            )
        # Browsers leave the scheme's default port out of Origin (RFC 6454 6.1).
        default = {"http": 80, "https": 443}[parts.scheme]
        port = "" if parts.port in (None, default) else f":{parts.port}"
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        origins.add(f"{parts.scheme}://{host}{port}")
    return frozenset(origins)


def _read_instance_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.upper()
        if name not in _TYPES or name == "INSTANCE_PATH":
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = _coerce(name, value, f"{path}: {key}")
    return values


def _coerce(name: str, value: object, where: str) -> Any:
    wanted = _TYPES[name]
    if wanted is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if wanted is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where} must be a number, not {value!r}") from None
    if wanted is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    return value


def _validate(values: dict[str, Any]) -> None:
    if values["COOKIE_SECURE"] not in COOKIE_SECURE_CHOICES:
        raise ConfigError(
            f"{PREFIX}COOKIE_SECURE must be one of {', '.join(COOKIE_SECURE_CHOICES)}, "
            f"not {values['COOKIE_SECURE']!r}"
        )
    for name in (
        "SESSION_IDLE_SECONDS",
        "SESSION_ABSOLUTE_SECONDS",
        "ARGON2_MEMORY_KIB",
        "ARGON2_TIME_COST",
        "ARGON2_PARALLELISM",
        "MAX_CONTENT_LENGTH",
        "THROTTLE_BASE_DELAY_SECONDS",
        "THROTTLE_MAX_DELAY_SECONDS",
        "THROTTLE_ACCOUNT_LIMIT",
        "THROTTLE_ACCOUNT_WINDOW_SECONDS",
        "THROTTLE_ADDRESS_LIMIT",
        "THROTTLE_ADDRESS_WINDOW_SECONDS",
        "THROTTLE_GLOBAL_LIMIT",
        "THROTTLE_GLOBAL_WINDOW_SECONDS",
        "THROTTLE_SIGNUP_LIMIT",
        "THROTTLE_SIGNUP_WINDOW_SECONDS",
        "DEVICE_COOKIE_DAYS",
        "AUDIT_RETENTION_DAYS",
        "DATABASE_TIMEOUT_SECONDS",
        "DATABASE_STATEMENT_TIMEOUT_MS",
    ):
        if values[name] < 1:
            raise ConfigError(f"{PREFIX}{name} must be at least 1, not {values[name]}")
    if not 0 <= values["SESSION_TOUCH_SECONDS"] < values["SESSION_IDLE_SECONDS"]:
        raise ConfigError(
            f"{PREFIX}SESSION_TOUCH_SECONDS must be at least 0 and less than "
            f"{PREFIX}SESSION_IDLE_SECONDS, or busy users would be logged out as idle"
        )
    for name in ("THROTTLE_FREE_FAILURES", "HASH_CONCURRENCY", "DATABASE_POOL_SIZE"):
        if values[name] < 0:
            raise ConfigError(f"{PREFIX}{name} must be 0 or more, not {values[name]}")
    if values["REDIS_URL"] and not values["REDIS_URL"].startswith(REDIS_SCHEMES):
        # Not echoed: the URL may hold Redis's password.
        raise ConfigError(f"{PREFIX}REDIS_URL must start with {', '.join(REDIS_SCHEMES)}")
    if not values["REDIS_KEY_PREFIX"]:
        raise ConfigError(f"{PREFIX}REDIS_KEY_PREFIX must not be empty")
    proxies = values["TRUSTED_PROXIES"].strip()
    if proxies and not proxies.isdigit():
        trusted_networks(proxies)
    cors_origins(values["CORS_ORIGINS"])
    if not values["HASH_WAIT_SECONDS"] > 0:
        raise ConfigError(f"{PREFIX}HASH_WAIT_SECONDS must be more than 0")
    if values["ARGON2_MEMORY_KIB"] < 8 * values["ARGON2_PARALLELISM"]:
        raise ConfigError(f"{PREFIX}ARGON2_MEMORY_KIB must be at least 8 per lane")
