"""Serve the app: `yupnope serve` runs granian, N worker processes each building its own app.

Why granian, measured against gunicorn (tuned or not) and uvicorn in docs/servers.md:
- it reads a request's head in Rust, outside Python, within a deadline, and only then hands the
  request to a Python thread, so connections that send half a request line or trickle headers
  hold no thread and are closed when the deadline passes (gunicorn gave them a thread for good);
- each worker listens on a socket of its own (``SO_REUSEPORT``), so the kernel spreads new
  connections over the workers: with one shared socket, a few keep-alive connections (a proxy's
  upstream pool) could all land on one worker and leave the others idle;
- it served the most signed-in pages of the candidates, in the smallest memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server.mp import MPServer
from granian.server.mt import MTServer

from .. import config, wiring
from ..hashing import hashing_slots
from .group import cli, one_line_errors, open_app

#: Milliseconds a client has to send a request's whole head; then the connection is closed.
#: Browsers and proxies send it in one packet; only a slow or hostile client needs longer.
HEAD_DEADLINE_MS = 10_000

#: Connections one worker holds at once, gunicorn's ``worker_connections``: granian's default
#: (its backlog shared among the workers) let 1,000 slow connections fill two workers, so that
#: new ones waited for the head deadline to free places (docs/servers.md).
CONNECTIONS_PER_WORKER = 1000

#: Seconds the requests in flight get to finish when the server stops or its workers are
#: replaced (gunicorn's graceful timeout); then the workers are killed.
GRACEFUL_SECONDS = 30


def server(
    target: str, host: str, port: int, workers: int, threads: int, working_dir: Path | None = None
) -> MPServer | MTServer:
    """Return a granian server that serves the WSGI app ``target`` ("module:factory").

    Each worker calls the factory after the fork, so no database connection crosses a fork.
    TERM and INT stop the server gracefully; HUP replaces the workers one at a time, each new
    one serving before the old one stops; a worker that dies is replaced.
    """
    return Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        factory=True,
        working_dir=working_dir,
        workers=workers,
        blocking_threads=threads,
        backpressure=CONNECTIONS_PER_WORKER,
        # HTTP/1.1 alone, what browsers and proxies speak to an app server: no HTTP/2 (which
        # granian would take without TLS, by prior knowledge) and no WebSocket to defend.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEAD_DEADLINE_MS),
        websockets=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SECONDS,
        log_access=True,
    )


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
    """Apply migrations, then serve with granian (N worker processes)."""
    with open_app() as app:
        settings = wiring.get(app).settings
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Six per CPU: more than a worker's hashing slots and their queue (QUEUE_PER_CPU per CPU)
    # can hold, so a flood of logins always leaves threads for the pages. granian warns at
    # start that this is more than it advises (2 per CPU + 1): those are the pages' threads.
    threads = threads or 6 * cpus
    # Workers build their app after the fork from the environment: one connection per thread,
    # and the machine's cores shared out among the workers as hashing slots.
    if not settings.database_pool_size:
        os.environ[config.env_name("database_pool_size")] = str(threads)
    if not settings.hash_concurrency:
        os.environ[config.env_name("hash_concurrency")] = str(hashing_slots(cpus, workers))
    server("yupnope:create_app", host, port, workers, threads).serve()
