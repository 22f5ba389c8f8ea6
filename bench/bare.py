"""Serve a bare Flask app that answers a constant, through yupnope's own granian setup.

B2's ceiling: the same ``run()`` as ``yupnope serve`` (granian's WSGI mode, the app built before
the workers are forked, the same workers, threads, deadlines and no access log), with only the app
swapped, so the ratio measures what yupnope adds.
"""

from __future__ import annotations

import argparse

from flask import Flask

from yupnope.cli.serve import Prebuilt, run


def create() -> Flask:
    """Build the bare app: one route that answers the same few bytes every time."""
    app = Flask(__name__)
    app.add_url_rule("/", "constant", lambda: "yup\n")
    return app


def main() -> None:
    """Parse the address, workers and threads, then serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    options = parser.parse_args()
    # The access log as `yupnope serve` has it by default: off.
    run(Prebuilt(create), options.host, options.port, options.workers, options.threads, False)


if __name__ == "__main__":
    main()
