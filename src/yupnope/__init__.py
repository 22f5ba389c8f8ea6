"""yupnope: a small login server. ``create_app`` builds the Flask application."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import config, db, services, web


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application from the settings in force (``test_config`` overrides them all)."""
    settings = config.load(overrides=test_config)
    app = web.new_app(settings["INSTANCE_PATH"])
    app.config.update(settings)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = config.ensure_secret_key(Path(app.instance_path))
    db.init_app(app)
    services.init_app(app)
    web.init_app(app)
    return app
