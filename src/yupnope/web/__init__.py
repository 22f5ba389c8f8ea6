"""Speak HTTP: the only package that reads requests and writes responses.

Each module translates between HTTP and the account rules; none holds a rule of its own.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from flask import request
from flask_openapi3.openapi import OpenAPI
from jinja2 import ChoiceLoader, FileSystemLoader

from .. import wiring
from ..config import Settings
from . import (
    account,
    admission,
    bodies,
    checkpoint,
    cookies,
    cors,
    factors,
    failures,
    forward,
    guards,
    headers,
    hosts,
    links,
    mail_pages,
    metrics,
    oidc,
    oidc_pages,
    openapi,
    pages,
    passkey_login,
    passkeys,
    proxies,
    request_ids,
    second_step,
    security_centre,
)

#: The health check that answers without the database (web/pages.live).
LIVENESS = "/healthz/live"

#: Seconds between two prunings of expired rows by one process.
PRUNE_INTERVAL = 3600


def new_app(settings: Settings) -> OpenAPI:
    """Return a bare application: Flask, with flask-openapi3's description of the JSON API."""
    return openapi.new_app(settings)


def init_app(app: OpenAPI) -> None:
    """Install the session cookie, guards, headers, error pages, routes and template overrides."""
    overrides = FileSystemLoader(str(Path(app.instance_path) / "templates"))
    if app.jinja_loader is not None:
        app.jinja_loader = ChoiceLoader([overrides, app.jinja_loader])
    links.init_app(app)
    app.session_interface = cookies.ServerSessionInterface(wiring.get(app).settings)
    # Innermost middleware and first hook: see admission.init_app.
    admission.init_app(app)
    # Around the door: the common forward-auth check answered before Flask (checkpoint.py).
    checkpoint.init_app(app)
    proxies.init_app(app)
    # Outermost: each request timed and given its id before anything else, answers before
    # Flask included, and the id taken only from a proxy whose address is still the peer's.
    metrics.init_app(app)
    request_ids.init_app(app)
    # Before the guards, in this order: a request for another host, then a body framed without
    # a Content-Length, are refused before anything else runs.
    hosts.init_app(app)
    bodies.init_app(app)
    guards.init_app(app)
    headers.init_app(app)
    cors.init_app(app)
    failures.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(second_step.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(factors.bp)
    app.register_blueprint(passkeys.bp)
    app.register_blueprint(passkey_login.bp)
    app.register_blueprint(forward.bp)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(oidc_pages.bp)
    app.register_blueprint(mail_pages.bp)
    app.register_blueprint(security_centre.bp)
    openapi.init_app(app)
    app.before_request(_prune_when_due)
    postman = wiring.get(app).postman
    if postman is not None:
        # Each process's mail sender starts with its first request (mail/postman.py).
        app.before_request(postman.ensure_running)


def _prune_when_due() -> None:
    """Prune expired rows at most once per interval per process, on some request's time.

    Never on the liveness check's, which must answer whatever the database does.
    """
    found = wiring.get()
    if time.monotonic() < found.next_prune or request.path == LIVENESS:
        return
    found.next_prune = time.monotonic() + PRUNE_INTERVAL
    wiring.prune(datetime.now(UTC))
