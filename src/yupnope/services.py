"""Build the account rules and sessions for the current app, for the pages and the CLI alike."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from . import db, housekeeping, outage, redis_counters
from .accounts import Accounts
from .admission import Gate, GatedHasher
from .counters import DatabaseCounters, Keeper
from .outage import FallbackCounters, Outage
from .personal_tokens import PersonalTokens
from .redis_counters import RedisCounters
from .security.passwords import Argon2Parameters
from .security.tokens import DeviceCookies
from .sessions import Lifetimes, Sessions
from .store import Store
from .throttle import Limit, Policy, Throttle

#: Logins that may wait for a hashing slot in one process, per CPU of the machine.
QUEUE_PER_CPU = 4


def init_app(app: Flask) -> None:
    """Make the app's hasher, hashing gate, throttle policy, lifetimes and Redis client once.

    The Redis client connects at its first command, in the worker process that sends it.
    """
    config = app.config
    cpus = os.cpu_count() or 1
    slots = config["HASH_CONCURRENCY"] or cpus
    app.extensions["yupnope.hasher"] = GatedHasher(
        Argon2Parameters(
            memory_kib=config["ARGON2_MEMORY_KIB"],
            time_cost=config["ARGON2_TIME_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
        ),
        # Four logins per CPU of the machine may wait, whatever this worker's share of slots:
        # enough for an ordinary burst however it falls on the workers (with one slot, eight
        # waiting on 2 CPUs is about 160 ms of hashing at OWASP's costs, inside the wait);
        # past that, waiting would only hold request threads a flood needs freed. Waiting
        # holds no memory.
        Gate(slots, config["HASH_WAIT_SECONDS"], queue=QUEUE_PER_CPU * cpus),
    )
    app.extensions["yupnope.lifetimes"] = Lifetimes(
        idle=timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
        absolute=timedelta(seconds=config["SESSION_ABSOLUTE_SECONDS"]),
        touch=timedelta(seconds=config["SESSION_TOUCH_SECONDS"]),
    )
    policy = app.extensions["yupnope.policy"] = _policy(config)
    if config["REDIS_URL"]:
        app.extensions["yupnope.redis"] = RedisCounters(
            redis_counters.redis_client(config["REDIS_URL"]),
            config["REDIS_KEY_PREFIX"],
            longest_wait=policy.max_delay,
        )
        app.extensions["yupnope.redis_outage"] = Outage(
            redis_counters.public_url(config["REDIS_URL"]), outage.RETRY_SECONDS
        )
    app.extensions["yupnope.devices"] = DeviceCookies(
        config["SECRET_KEY"], max_age=config["DEVICE_COOKIE_DAYS"] * 86400
    )


def _policy(config: Mapping[str, Any]) -> Policy:
    def seconds(name: str) -> timedelta:
        return timedelta(seconds=config[f"THROTTLE_{name}_SECONDS"])

    def limit(name: str) -> Limit:
        return Limit(config[f"THROTTLE_{name}_LIMIT"], seconds(f"{name}_WINDOW"))

    return Policy(
        free_failures=config["THROTTLE_FREE_FAILURES"],
        base_delay=seconds("BASE_DELAY"),
        max_delay=seconds("MAX_DELAY"),
        account=limit("ACCOUNT"),
        address=limit("ADDRESS"),
        global_=limit("GLOBAL"),
        signup=limit("SIGNUP"),
    )


def store() -> Store:
    """Return a store over this app context's database session."""
    return Store(db.get_session())


def accounts() -> Accounts:
    """Return the account rules over this app context's database session."""
    extensions = current_app.extensions
    shared = store()
    return Accounts(
        shared,
        extensions["yupnope.hasher"],
        Throttle(_counters(shared), extensions["yupnope.policy"]),
        extensions["yupnope.devices"],
        signup_open=current_app.config["SIGNUP_OPEN"],
    )


def _counters(shared: Store) -> Keeper:
    """Return the throttle counters: in Redis if one is configured, with the database behind."""
    database = DatabaseCounters(shared)
    remote: RedisCounters | None = current_app.extensions.get("yupnope.redis")
    if remote is None:
        return database
    return FallbackCounters(remote, database, current_app.extensions["yupnope.redis_outage"])


def sessions() -> Sessions:
    """Return the session keeper over this app context's database session."""
    lifetimes: Lifetimes = current_app.extensions["yupnope.lifetimes"]
    return Sessions(store(), lifetimes)


def personal_tokens() -> PersonalTokens:
    """Return the personal token keeper over this app context's database session."""
    return PersonalTokens(store())


def hash_slots() -> int:
    """Return how many argon2 computations this process may run at once."""
    hasher: GatedHasher = current_app.extensions["yupnope.hasher"]
    return hasher.gate.slots


def prune(now: datetime) -> housekeeping.Pruned:
    """Delete expired sessions, stale throttle counters and events past retention."""
    config = current_app.config
    policy: Policy = current_app.extensions["yupnope.policy"]
    windows = (policy.account, policy.address, policy.global_, policy.signup)
    return housekeeping.prune(
        store(),
        now,
        idle=timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
        longest_window=max(limit.window for limit in windows),
        retention=timedelta(days=config["AUDIT_RETENTION_DAYS"]),
    )
