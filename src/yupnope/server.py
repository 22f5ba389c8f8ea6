"""Serve the app with gunicorn: N pre-forked worker processes, each building its own app."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from . import create_app


def hashing_slots(cpus: int, workers: int) -> int:
    """Return each worker's share of the machine's CPUs as hashing slots, rounded up.

    argon2 is bound by memory bandwidth: more hashes at once than cores makes each slower and
    holds more memory, so the workers of one machine share its cores out among them. Rounding
    up leaves no core idle when the CPUs do not divide evenly (4 CPUs, 3 workers: 2 each, at
    most 6 at once), at the cost of that much oversubscription.
    """
    return max(1, -(-cpus // workers))


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
