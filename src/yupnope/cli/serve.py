"""Serve the app: `yupnope serve` runs gunicorn, N pre-forked workers each building its own app."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from .. import config, create_app, wiring
from ..hashing import hashing_slots
from .group import cli, one_line_errors, open_app


class Server(BaseApplication):  # type: ignore[misc]
    """Run gunicorn from inside ``yupnope serve``, without a config file or a command line.

    Each worker builds its own app after the fork, so no database connection crosses a fork.
    """

    def __init__(self, bind: str, workers: int, threads: int) -> None:
        self.options: dict[str, Any] = {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "errorlog": "-",
            "proc_name": "yupnope",
            # Forwarded headers are judged by the app, by YUPNOPE_TRUSTED_PROXIES alone.
            "forwarded_allow_ips": "",
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn 25.1+ opens a control socket at one path per OS user (~/.gunicorn/gunicorn.ctl):
        # a second server takes it over from the first, so gunicornc would stop or resize the
        # wrong one. yupnope is run by signals and its own command line; older gunicorn lacks it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        return create_app()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: one per CPU].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Request threads per worker [default: six per CPU].",
)
@click.option("--debug", is_flag=True, help="Flask's reloading development server instead.")
@one_line_errors
def serve(host: str, port: int, workers: int | None, threads: int | None, debug: bool) -> None:
    """Apply migrations, then serve with gunicorn (N worker processes)."""
    with open_app() as app:
        settings = wiring.get(app).settings
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Six per CPU: more than a worker's hashing slots and their queue (QUEUE_PER_CPU per CPU)
    # can hold, so a flood of logins always leaves threads for the pages.
    threads = threads or 6 * cpus
    # Workers build their app after the fork from the environment: one connection per thread,
    # and the machine's cores shared out among the workers as hashing slots.
    if not settings.database_pool_size:
        os.environ[config.env_name("database_pool_size")] = str(threads)
    if not settings.hash_concurrency:
        os.environ[config.env_name("hash_concurrency")] = str(hashing_slots(cpus, workers))
    Server(bind=bind, workers=workers, threads=threads).run()
