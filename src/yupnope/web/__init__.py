"""Speak HTTP: the only package that reads requests and writes responses.

Each module translates between HTTP and the account rules; none holds a rule of its own.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader

from . import cookies, failures, guards, pages


def init_app(app: Flask) -> None:
    """Install the session cookie, guards, error pages, routes and template overrides."""
    overrides = FileSystemLoader(str(Path(app.instance_path) / "templates"))
    if app.jinja_loader is not None:
        app.jinja_loader = ChoiceLoader([overrides, app.jinja_loader])
    app.session_interface = cookies.ServerSessionInterface()
    guards.init_app(app)
    failures.init_app(app)
    app.register_blueprint(pages.bp)
