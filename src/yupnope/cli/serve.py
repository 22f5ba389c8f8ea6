"""Serve the app: `yupnope serve` runs granian, N worker processes forked once the app is built.

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

import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import click
from flask import Flask
from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from .. import config, create_app, logs, wiring
from ..hashing import hashing_slots
from ..metrics import MULTIPROCESS_DIR, Prometheus
from ..web import metrics as web_metrics
from .group import cli, migrate, one_line_errors, open_app

log = logging.getLogger(__name__)

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

#: granian's access log line, without its time: the log's formatter writes every line's.
ACCESS_LOG_FORMAT = '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'


class Prebuilt:
    """Hold the app the workers serve, built in this process before any worker is forked.

    Built once here, its objects (the URL map, the templates, the API's models, the prepared
    statements) lie in pages every worker shares, instead of being built again in each: about
    8 MiB less for two workers (B4 in docs/benchmarks.md). Building it opens no database
    connection and starts no thread (the engine connects, and the hashing threads start, at
    their first use in a worker), so nothing that must not cross a fork is there to cross it.
    """

    def __init__(self, build: Callable[[], Flask]) -> None:
        self.build = build
        self.app = build()

    def load(self, _target: str) -> Flask:
        """Return the app: granian's target loader, which each worker calls after its fork."""
        return self.app

    def rebuild(self) -> None:
        """Build the app again from the settings in force: on HUP, before the new workers start.

        Settings that no longer load leave the app as it was, and the error in the log: a typo
        in yupnope.toml must not stop a running server. Whatever fails is caught (a database
        URL SQLAlchemy cannot parse, a driver not installed): an error escaping here would end
        granian's main loop and leave its workers without it.
        """
        try:
            self.app = self.build()
        except Exception as exc:
            log.error("HUP: the settings did not load, so they stay as they were: %s", exc)


def run(
    prebuilt: Prebuilt, host: str, port: int, workers: int, threads: int, settings: config.Settings
) -> None:
    """Serve ``prebuilt``'s app with granian until TERM or INT, a line per request if asked.

    TERM and INT stop the server gracefully; HUP builds the app again, then replaces the
    workers one at a time, each new one serving before the old one stops; a worker that dies
    is replaced.
    """
    server = Granian(
        # Only a name for the log: the loader below hands each worker the app itself.
        "yupnope",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
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
        log_access=settings.access_log,
        log_access_format=ACCESS_LOG_FORMAT,
        # Applied in this process and again in each worker: every line in LOG_FORMAT.
        log_dictconfig=logs.granian_config(settings.log_format),
    )
    server.on_reload(prebuilt.rebuild)
    server.serve(target_loader=prebuilt.load)


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
    settings = config.load()
    logs.configure(settings.log_format)
    if debug:
        with open_app() as app:
            pass
        app.run(host=host, port=port, debug=True)
        return
    _migrate_in_a_child()
    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Six per CPU: more than a worker's hashing slots and their queue (QUEUE_PER_CPU per CPU)
    # can hold, so a flood of logins always leaves threads for the pages. granian warns at
    # start that this is more than it advises (2 per CPU + 1): those are the pages' threads.
    threads = threads or 6 * cpus
    # The app is built from the environment: one connection per thread, and the machine's
    # cores shared out among the workers as hashing slots.
    if not settings.database_pool_size:
        os.environ[config.env_name("database_pool_size")] = str(threads)
    if not settings.hash_concurrency:
        os.environ[config.env_name("hash_concurrency")] = str(hashing_slots(cpus, workers))
    # A HUP's new app keeps these two as they were at the start: the workers' folder, the
    # listener and the log's handlers are set up once, here.
    for name in ("metrics", "log_format"):
        os.environ[config.env_name(name)] = getattr(settings, name)
    with _metrics_folder(settings.metrics != "off"):
        prebuilt = Prebuilt(create_app)
        found = wiring.get(prebuilt.app).metrics
        if settings.metrics_address is not None and isinstance(found, Prometheus):
            _listen(found, *settings.metrics_address)
        run(prebuilt, host, port, workers, threads, settings)


@contextmanager
def _metrics_folder(wanted: bool) -> Iterator[None]:
    """Give the workers' metrics a private folder (0700) for the block, when ``wanted``.

    prometheus_client's multiprocess mode: each worker writes its counts to files of its own
    there, and a scrape adds them up. A new folder at each start, so no count of an earlier
    run is added in; removed at the end. The files of a worker that died stay, for its counts
    still count: mark_process_dead only removes live gauges' files, and yupnope has none.
    """
    if not wanted:
        yield
        return
    folder = tempfile.mkdtemp(prefix="yupnope-metrics-")
    # Before the app is built: prometheus_client reads it when first imported.
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _listen(metrics: Prometheus, host: str, port: int) -> None:
    """Serve the metrics at ``host:port``, or say in one line why it cannot."""
    try:
        web_metrics.listen(metrics, host, port)
    except OSError as exc:
        where = config.env_name("metrics")
        raise click.ClickException(
            f"{where}: cannot listen at {host}:{port}: {exc.strerror}"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    log.info("metrics served at http://%s:%d/metrics", shown, port)


def _migrate_in_a_child() -> None:
    """Apply the migrations in a child process, which ends with all it loaded; print its notes.

    The workers are forked from this process: they start with whatever it holds, and each page
    of it they touch is copied into each of them. The migrations need Alembic and a whole app,
    which no worker uses (about 10 MiB of the import alone), so this process never loads them.
    The child sends back its notes or its one-line error, which this process prints.
    """
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_migrate, args=(sending,), name="yupnope-migrate")
    child.start()
    sending.close()
    try:
        notes, error = receiving.recv()
    except EOFError:
        notes, error = [], ""
    child.join()
    if not error and child.exitcode:
        error = f"the migrations stopped (exit status {child.exitcode}) before they said why"
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    if error:
        raise click.ClickException(error)


def _migrate(sending: Connection) -> None:
    """Migrate, in the child, and send back ``(notes, error)``: an error as its one line."""
    try:
        notes = one_line_errors(_migrate_and_close)()
    except click.ClickException as exc:
        sending.send(([], exc.message))
    else:
        sending.send((notes, None))
    sending.close()


def _migrate_and_close() -> list[str]:
    """Build the app, bring its schema up to date, close its connections; return the notes."""
    app = create_app()
    try:
        return migrate(app)
    finally:
        wiring.get(app).engine.dispose()
