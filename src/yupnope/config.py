"""Define every setting once, with its default, and load the values in force.

A value comes from, in rising order of precedence: the default below, the instance file
``<instance>/yupnope.toml`` (keys as the fields are named, ``cookie_secure = "always"``), the
environment (``YUPNOPE_COOKIE_SECURE=always``), and last a caller's own mapping of field names.
The access rules, a table (``[access]``), come from the instance file or the caller, never the
environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from . import addresses, instance_file, setting_names, setting_values
from .access import AccessRules
from .addresses import Network
from .coercion import coerce
from .errors import ConfigError
from .setting_names import ENV_PREFIX, env_name

__all__ = ["ENV_PREFIX", "ConfigError", "Settings", "env_name", "load"]


@dataclass(frozen=True)
class Settings:
    """Carry every setting, each field named as its environment variable without the prefix."""

    #: Folder for the database, the secret key, ``yupnope.toml`` and template overrides.
    instance_path: str = "./instance"
    #: SQLAlchemy URL of the database; empty means ``sqlite:///<instance>/yupnope.db``.
    database_url: str = ""
    #: Database connections one process keeps; 0 means one per request thread under ``serve``,
    #: else 5.
    database_pool_size: int = 0
    #: Seconds to wait for a database connection before the request fails (503).
    database_timeout_seconds: int = 5
    #: Milliseconds one statement may run on PostgreSQL before it is cancelled.
    database_statement_timeout_ms: int = 5000
    #: Redis URL for the throttle counters (``redis://host:6379/0``); empty keeps them in the
    #: database.
    redis_url: str = ""
    #: Start of every Redis key, so several deployments can share one Redis.
    redis_key_prefix: str = "yupnope"
    #: Key for signed values; empty means generated once and kept in ``<instance>/secret_key``.
    secret_key: str = ""
    #: ``auto`` marks cookies Secure when the request came over HTTPS; ``always`` or ``never``
    #: force it.
    cookie_secure: str = "auto"
    #: Name of the session cookie.
    session_cookie_name: str = "yupnope_session"
    #: Seconds a session may stay unused before it ends.
    session_idle_seconds: int = 12 * 3600
    #: Seconds after login at which a session ends however busy it is.
    session_absolute_seconds: int = 14 * 24 * 3600
    #: Seconds between two writes of a session's last-seen time; spares a write on every page view.
    session_touch_seconds: int = 60
    #: Argon2id memory cost in KiB (OWASP Password Storage Cheat Sheet: 19 MiB).
    argon2_memory_kib: int = 19456
    #: Argon2id iterations (OWASP: 2 with 19 MiB).
    argon2_time_cost: int = 2
    #: Argon2id lanes (OWASP: 1).
    argon2_parallelism: int = 1
    #: Whether anyone may create an account at ``/signup``.
    signup_open: bool = True
    #: Largest request body in bytes; a larger one gets 413, never cut.
    max_content_length: int = 64 * 1024
    #: Failed logins an account (or a device) may have before each further one waits.
    throttle_free_failures: int = 5
    #: Seconds of the first wait; each further failure doubles it, up to the maximum below.
    throttle_base_delay_seconds: int = 1
    #: Longest wait between two attempts on one account, in seconds.
    throttle_max_delay_seconds: int = 15 * 60
    #: Failed logins one account (or one device) may have in the window below (NIST SP 800-63B
    #: 5.2.2: at most 100).
    throttle_account_limit: int = 100
    #: Seconds over which an account's failures add up.
    throttle_account_window_seconds: int = 30 * 24 * 3600
    #: Failed logins one client address (an IPv6 /64) may have in the window below.
    throttle_address_limit: int = 50
    #: Seconds over which an address's failures add up.
    throttle_address_window_seconds: int = 15 * 60
    #: Failed logins the whole server accepts from clients without a device value per window below.
    throttle_global_limit: int = 1000
    #: Seconds over which the global failures add up.
    throttle_global_window_seconds: int = 5 * 60
    #: Sign-up attempts one client address may make in the window below.
    throttle_signup_limit: int = 20
    #: Seconds over which an address's sign-up attempts add up.
    throttle_signup_window_seconds: int = 3600
    #: Days a device value (a browser's cookie, an API client's ``device``) lets its client skip
    #: the account's, address's and global throttle (OWASP device cookies).
    device_cookie_days: int = 180
    #: Proxies whose X-Forwarded-For is believed: empty for none, a count, or comma-separated CIDRs.
    trusted_proxies: str = ""
    #: argon2 computations one process runs at once; 0 means the CPUs shared out among ``serve``'s
    #: workers (2 CPUs, 2 workers: 1 each), and one per CPU for any other process.
    hash_concurrency: int = 0
    #: Seconds a login waits for a free hashing slot before it gets 503.
    hash_wait_seconds: float = 0.5
    #: Days login events are kept before they are pruned.
    audit_retention_days: int = 365
    #: Most events the log keeps: the oldest beyond it are pruned whatever their age.
    audit_max_events: int = 1_000_000
    #: Other sites' origins (``https://app.example.com``, comma-separated) whose pages may call the
    #: JSON API with bearer tokens; empty sends no CORS headers at all.
    cors_origins: str = ""
    #: Origin people reach this server at (``https://login.example.com``): redirects are built on
    #: it and other hosts refused (400); empty answers any host and redirects with relative paths.
    public_url: str = ""
    #: Whether ``serve`` writes a line per request to its output. Off: it cost more than the
    #: request itself on the busiest paths (docs/benchmarks.md), and the proxy in front keeps one.
    access_log: bool = False
    #: Whether the forward-auth checks take ``Authorization: Basic`` (a name and password with
    #: every request) from clients that can do no better; throttled as the login form is.
    proxy_basic_auth: bool = False
    #: Domain the session cookie covers (``example.com``: this server's host and every host under
    #: it), so that reverse proxies can check the sessions of the apps there (forward-auth), and a
    #: login may return to their pages; empty: the cookie is this server's host's alone.
    #: Normalised when loaded: lower case, ASCII (IDNA), without a leading dot.
    cookie_domain: str = ""
    #: ``optional``: a user may set up a second factor (an authenticator app), and is then asked
    #: for it at every login; ``required``: a user without one is led to set one up at login,
    #: and the forward-auth checks let such a session into no app until it is done.
    second_factor: str = "optional"
    #: ``off``: accounts have no email address; ``optional``: a person may give one, verified by
    #: a link, to reset a forgotten password and hear of new sign-ins; ``required``: sign-up
    #: asks for one. Anything but ``off`` needs ``smtp_url``, ``mail_from`` and ``public_url``.
    email: str = "off"
    #: The mail server: ``smtp://user:pass@host:port`` (plain, for a local relay),
    #: ``smtp+starttls://…`` or ``smtps://…``; user and password percent-encoded.
    smtp_url: str = ""
    #: The From address of every mail (``yupnope <login@example.com>``).
    mail_from: str = ""
    #: Seconds a password reset link works, unless the password changes first.
    password_reset_seconds: int = 3600
    #: ``off``: no metrics; ``on``: Prometheus metrics at ``/metrics`` on the server's own
    #: port; ``HOST:PORT``: at a listener of their own there (``127.0.0.1:9100``), and the
    #: server's port answers ``/metrics`` with 404.
    metrics: str = "off"
    #: ``text``: each log line time, level, logger, request id and message; ``json``: the
    #: same as one JSON object per line.
    log_format: str = "text"
    #: The forward-auth access rules: the ``[access]`` table of ``yupnope.toml``, with no
    #: environment variable; none by default, and then the default policy denies every request.
    access: AccessRules = AccessRules()

    #: ``trusted_proxies`` parsed: how many proxies stand in front, when it is a count.
    proxy_count: int | None = field(init=False, default=None, repr=False)
    #: ``trusted_proxies`` parsed: the CIDRs of the proxies, when it lists CIDRs.
    proxy_networks: tuple[Network, ...] = field(init=False, default=(), repr=False)
    #: ``cors_origins`` parsed and normalised as browsers write ``Origin``.
    allowed_origins: frozenset[str] = field(init=False, default=frozenset(), repr=False)
    #: ``public_url`` parsed and normalised as an origin; empty when it is.
    public_origin: str = field(init=False, default="", repr=False)
    #: ``metrics`` parsed: the host and port of the metrics' own listener, or None.
    metrics_address: tuple[str, int] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        setting_values.check(vars(self))
        address = setting_values.metrics_address(self.metrics)
        object.__setattr__(self, "metrics_address", address)
        proxies = self.trusted_proxies.strip()
        try:
            if proxies.isascii() and proxies.isdigit():
                object.__setattr__(self, "proxy_count", int(proxies))
            elif proxies:
                networks = addresses.networks(proxies, env_name("trusted_proxies"))
                object.__setattr__(self, "proxy_networks", networks)
            origins = addresses.origins(self.cors_origins, env_name("cors_origins"))
            object.__setattr__(self, "allowed_origins", origins)
            public = self.public_url.strip()
            if public:
                origin = addresses.origin(public, env_name("public_url"))
                object.__setattr__(self, "public_origin", origin)
            if self.cookie_domain.strip():
                # Kept as browsers compare it: lower case, ASCII, no leading dot.
                name = addresses.domain(self.cookie_domain, env_name("cookie_domain"))
                object.__setattr__(self, "cookie_domain", name)
                addresses.check_covered(
                    self.public_origin, name, env_name("cookie_domain"), env_name("public_url")
                )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


#: Each setting a caller may give, with its type: the fields that are not derived.
_TYPES: dict[str, type] = {
    item.name: get_type_hints(Settings)[item.name]
    for item in dataclasses.fields(Settings)
    if item.init
}


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Return the settings in force: defaults, instance file, environment, then overrides."""
    env = os.environ if environ is None else environ
    given = dict(overrides or {})
    setting_names.refuse_unknown(given, _TYPES)
    tables = {env_name(name) for name in instance_file.FILE_ONLY}
    variables = {env_name(name) for name in _TYPES} - tables
    setting_names.refuse_unknown_variables(env, variables, ENV_PREFIX, tables)
    instance = Path(
        given.get("instance_path") or env.get(env_name("instance_path")) or Settings.instance_path
    ).resolve()
    values = instance_file.read(instance / "yupnope.toml", _TYPES)
    for name in _TYPES.keys() - instance_file.FILE_ONLY:
        if env_name(name) in env:
            values[name] = coerce(env[env_name(name)], _TYPES[name], env_name(name))
    if isinstance(given.get("access"), Mapping):
        given["access"] = instance_file.access_rules(given["access"], "")
    values.update(given)
    values["instance_path"] = str(instance)
    if not values.get("database_url"):
        values["database_url"] = f"sqlite:///{instance / 'yupnope.db'}"
    return Settings(**values)
