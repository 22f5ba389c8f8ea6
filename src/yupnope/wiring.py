"""Hold the app's long-lived objects on one typed extension, and build each request's rules.

The long-lived objects (settings, engine, the credentials' lookup, hasher and its gate, throttle
policy, session lifetimes, device cookies, Redis counters, mail sender) are made once per process
and hang on ``app.extensions["yupnope"]`` as one ``Wiring``, so every use is typed and found by
grep. The rules are cheap objects over the request's (or the command's) ORM session, made on
each call to the accessors below; the ORM session opens at its first use, lives in the app
context and closes with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import Flask, current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession

from . import db, housekeeping, metrics
from .accounts import Accounts
from .config import Settings
from .emails import Addresses
from .hashing import GatedHasher
from .mail.postman import Postman
from .notices import Notices
from .oidc import keys
from .oidc.clients import Clients
from .oidc.connections import Connections
from .oidc.keys import KeyRing
from .operator import Operator
from .personal_tokens import PersonalTokens
from .resets import Resets
from .second_factors import apps
from .second_factors.apps import AuthenticatorApps
from .second_factors.passkey_logins import PasskeyLogins
from .second_factors.passkeys import Passkeys
from .second_factors.second_step import SecondStep
from .security.sealing import Sealer
from .security.tokens import DeviceCookies
from .sessions import Lifetimes, Sessions
from .store import Store
from .store.credentials import Credentials
from .throttle import Policy, Throttle
from .throttle.counters import Keeper
from .throttle.database import DatabaseCounters

if TYPE_CHECKING:
    from .throttle.fallback import Outage
    from .throttle.redis import RedisCounters

log = logging.getLogger(__name__)

#: The key of the one extension this app installs.
EXTENSION = "yupnope"


class Wiring:
    """Carry the objects one process makes once and every request shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: What is counted for Prometheus: nothing, with METRICS off (metrics.py).
        self.metrics = metrics.of(settings.metrics)
        self.engine = db.engine_for(settings)
        self.sessionmaker = db.make_sessionmaker(self.engine)
        self.credentials = Credentials(self.engine)
        self.hasher = GatedHasher.of(settings, self.metrics)
        self.policy = Policy.of(settings)
        self.lifetimes = Lifetimes(
            idle=timedelta(seconds=settings.session_idle_seconds),
            absolute=timedelta(seconds=settings.session_absolute_seconds),
            touch=timedelta(seconds=settings.session_touch_seconds),
        )
        self.devices = DeviceCookies(
            settings.secret_key, max_age=settings.device_cookie_days * 86400
        )
        self.sealer = Sealer(settings.secret_key, apps.PURPOSE)
        self.key_sealer = Sealer(settings.secret_key, keys.PURPOSE)
        # The Redis client connects at its first command, in the worker process that sends it.
        self.redis: tuple[RedisCounters, Outage] | None = None
        if settings.redis_url:
            self.redis = _redis(settings, self.policy)
        #: This process's mail sender, when accounts have addresses (``email`` not ``off``).
        self.postman = Postman.of(settings, self.own_store)
        #: When this process next prunes expired rows (a time.monotonic() value).
        self.next_prune = 0.0

    def init_app(self, app: Flask) -> None:
        """Hang this wiring on ``app`` and close each app context's ORM session at its end."""
        app.extensions[EXTENSION] = self
        app.teardown_appcontext(_close_session)

    @contextmanager
    def own_store(self) -> Iterator[Store]:
        """Yield a store of its own, for web/checkpoint.py and mail/postman.py (no app context)."""
        opened: list[OrmSession] = []

        def open_session() -> OrmSession:
            opened.append(self.sessionmaker())
            return opened[-1]

        try:
            yield Store(open_session, self.credentials)
        finally:
            for session in opened:
                _close(session)

    @contextmanager
    def own_sessions(self) -> Iterator[Sessions]:
        """Yield the session keeper over a store of its own (the lookup opens no ORM session)."""
        with self.own_store() as store:
            yield Sessions(store, self.lifetimes, self.settings.email != "off", self.metrics)

    def counters(self, store: Store) -> Keeper:
        """Return the throttle counters: the short ones in Redis if one is configured.

        The long ones stay in the database (throttle/split.py), and all of them go there
        while Redis does not answer (throttle/fallback.py).
        """
        database = DatabaseCounters(store)
        if self.redis is None:
            return database
        from .throttle.fallback import FallbackCounters
        from .throttle.split import SplitCounters

        remote, outage = self.redis
        return FallbackCounters(SplitCounters(remote, database), database, outage)


def _redis(settings: Settings, policy: Policy) -> tuple[RedisCounters, Outage]:
    """Return the Redis counters and outages' record; redis-py imported only now (8 MiB)."""
    from .throttle.fallback import RETRY_SECONDS, Outage
    from .throttle.redis import RedisCounters, public_url, redis_client

    counters = RedisCounters(
        redis_client(settings.redis_url), settings.redis_key_prefix, longest_wait=policy.max_delay
    )
    return counters, Outage(public_url(settings.redis_url), RETRY_SECONDS)


def get(app: Flask | None = None) -> Wiring:
    """Return the wiring of ``app``, or of the current app."""
    found = (app or current_app).extensions.get(EXTENSION)
    if not isinstance(found, Wiring):
        raise RuntimeError("this app was not made by yupnope.create_app")
    return found


def orm_session() -> OrmSession:
    """Return this app context's ORM session, opening it on first use."""
    session = g.get("yupnope_orm_session")
    if not isinstance(session, OrmSession):
        session = get().sessionmaker()
        g.yupnope_orm_session = session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("yupnope_orm_session", None)
    if isinstance(session, OrmSession):
        _close(session)


def _close(session: OrmSession) -> None:
    """Close ``session``, rolling back whatever it left open; a failure is only logged."""
    try:
        session.close()
    except SQLAlchemyError as exc:
        # The answer is already made; only the rollback on a connection that died meanwhile
        # failed, and the pool has discarded that connection. Raising here would turn the
        # answer into a bare 500.
        log.warning("database session not closed cleanly: %s", " ".join(str(exc).split()))


def store() -> Store:
    """Return a store over this app context's ORM session, opened when first needed."""
    return Store(orm_session, get().credentials)


def sessions(shared: Store | None = None) -> Sessions:
    """Return the session keeper over ``shared``, or over this app context's ORM session."""
    found = get()
    return Sessions(
        shared or store(), found.lifetimes, found.settings.email != "off", found.metrics
    )


def new_throttle(shared: Store) -> Throttle:
    """Return the throttle over ``shared`` (its counters in Redis when one is configured)."""
    wiring = get()
    return Throttle(wiring.counters(shared), wiring.policy, wiring.metrics)


def accounts() -> Accounts:
    """Return the owner's account rules over this app context's ORM session."""
    wiring = get()
    shared = store()
    throttle = new_throttle(shared)
    return Accounts(
        shared,
        wiring.hasher,
        throttle,
        wiring.devices,
        sessions(shared),
        second_step(shared, throttle),
        signup_open=wiring.settings.signup_open,
    )


def authenticator_apps(
    shared: Store | None = None, throttle: Throttle | None = None
) -> AuthenticatorApps:
    """Return the authenticator apps' rules over ``shared``, or this app context's ORM session."""
    wiring = get()
    shared = shared or store()
    throttle = throttle or new_throttle(shared)
    return AuthenticatorApps(shared, wiring.sealer, throttle)


def second_step(shared: Store | None = None, throttle: Throttle | None = None) -> SecondStep:
    """Return the login's second step over ``shared``, or this app context's ORM session."""
    wiring = get()
    shared = shared or store()
    throttle = throttle or new_throttle(shared)
    return SecondStep(
        shared, throttle, sessions(shared), authenticator_apps(shared, throttle), wiring.devices
    )


def passkeys() -> Passkeys:
    """Return the passkeys' rules (add, list, rename, remove) over this app context's session."""
    return Passkeys(store())


def passkey_logins() -> PasskeyLogins:
    """Return the logins and confirmations by passkey over this app context's ORM session."""
    wiring = get()
    shared = store()
    throttle = new_throttle(shared)
    return PasskeyLogins(shared, throttle, sessions(shared), wiring.devices)


def oidc_clients() -> Clients:
    """Return the operator's OpenID Connect clients over this app context's ORM session."""
    return Clients(store())


def connections() -> Connections:
    """Return the apps' live grants over this app context's ORM session."""
    return Connections(store())


def key_ring() -> KeyRing:
    """Return the ID tokens' signing keys over this app context's ORM session."""
    return KeyRing(store(), get().key_sealer)


def addresses() -> Addresses:
    """Return the accounts' email addresses over this app context's ORM session."""
    return Addresses(store())


def resets() -> Resets:
    """Return the password resets by mail over this app context's ORM session."""
    shared = store()
    return Resets(shared, new_throttle(shared), get().hasher)


def notices() -> Notices:
    """Return the new sign-ins' notices and their "not me" links over this app context's."""
    return Notices(store())


def operator() -> Operator:
    """Return the operator's actions over this app context's ORM session."""
    return Operator(accounts())


def personal_tokens() -> PersonalTokens:
    """Return the personal token keeper over this app context's ORM session."""
    return PersonalTokens(store())


def prune(now: datetime) -> housekeeping.Pruned:
    """Delete expired sessions, stale throttle counters and events past retention."""
    wiring = get()
    return housekeeping.prune(
        store(),
        now,
        idle=wiring.lifetimes.idle,
        longest_window=wiring.policy.longest_window,
        retention=timedelta(days=wiring.settings.audit_retention_days),
        max_events=wiring.settings.audit_max_events,
    )
