"""Build the account rules and sessions for the current app, for the pages and the CLI alike."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app

from . import db
from .accounts import Accounts
from .security.passwords import Argon2Parameters, Hasher
from .sessions import Lifetimes, Sessions
from .store import Store


def init_app(app: Flask) -> None:
    """Make the app's hasher and session lifetimes once, from its settings."""
    config = app.config
    app.extensions["yupnope.hasher"] = Hasher(
        Argon2Parameters(
            memory_kib=config["ARGON2_MEMORY_KIB"],
            time_cost=config["ARGON2_TIME_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
        )
    )
    app.extensions["yupnope.lifetimes"] = Lifetimes(
        idle=timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
        absolute=timedelta(seconds=config["SESSION_ABSOLUTE_SECONDS"]),
        touch=timedelta(seconds=config["SESSION_TOUCH_SECONDS"]),
    )


def store() -> Store:
    """Return a store over this app context's database session."""
    return Store(db.get_session())


def accounts() -> Accounts:
    """Return the account rules over this app context's database session."""
    hasher: Hasher = current_app.extensions["yupnope.hasher"]
    return Accounts(store(), hasher, signup_open=current_app.config["SIGNUP_OPEN"])


def sessions() -> Sessions:
    """Return the session keeper over this app context's database session."""
    lifetimes: Lifetimes = current_app.extensions["yupnope.lifetimes"]
    return Sessions(store(), lifetimes)
