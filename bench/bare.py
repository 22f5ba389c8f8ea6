"""Serve a bare Flask app that answers a constant, through yupnope's own gunicorn setup.

B2's ceiling: the same ``Server`` class as ``yupnope serve`` (gthread, the same workers, threads,
access log and options), with only the app swapped, so the ratio measures what yupnope adds.
"""

from __future__ import annotations

import argparse

from flask import Flask

from yupnope.cli.serve import Server

app = Flask(__name__)


@app.get("/")
def constant() -> str:
    """Return the same few bytes every time."""
    return "yup\n"


class BareServer(Server):
    """Run ``yupnope serve``'s gunicorn configuration around the bare app."""

    def load(self) -> Flask:
        """Return the bare app instead of building yupnope's."""
        return app


def main() -> None:
    """Parse the bind address, workers and threads, then serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    options = parser.parse_args()
    BareServer(bind=options.bind, workers=options.workers, threads=options.threads).run()


if __name__ == "__main__":
    main()
