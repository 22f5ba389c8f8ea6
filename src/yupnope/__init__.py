"""yupnope: a small login server. ``create_app`` builds the Flask application."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import config, instance, logs, web
from .wiring import Wiring


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the application from the settings in force (``overrides`` win over them all)."""
    settings = config.load(overrides=overrides)
    # Where the process has no logging of its own: `serve` sets it up first (logs.py).
    logs.configure(settings.log_format, replace=False)
    instance.close_to_others(Path(settings.instance_path))
    if not settings.secret_key:
        key = instance.ensure_secret_key(Path(settings.instance_path))
        settings = dataclasses.replace(settings, secret_key=key)
    app = web.new_app(settings)
    Wiring(settings).init_app(app)
    web.init_app(app)
    return app
