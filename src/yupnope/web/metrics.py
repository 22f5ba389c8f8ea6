"""Serve the Prometheus metrics, time every request by its route, and count logins' outcomes.

With METRICS ``on`` the app answers ``GET /metrics`` itself, before Flask and its hooks (like
web/checkpoint's answers): Prometheus scrapes by address, so a PUBLIC_URL's host check must not
refuse it, and a scrape should prune nothing. With ``HOST:PORT`` the listener ``serve`` starts
(``listen``) answers there instead, and the app's port answers 404. With ``off`` none of this
is installed: no request pays for a clock it does not need.

A request is timed from the outermost middleware, so the answers web/checkpoint and
web/admission give before Flask count as well; its route is the URL rule that took it,
noted in the environ by whichever layer answered (``ROUTE``), or ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, request

from .. import wiring
from ..accounts import SecondStepNeeded
from ..errors import AccountError, Busy, ChallengeGone, InvalidCredentials, Throttled
from ..metrics import (
    BUSY,
    CHALLENGE_GONE,
    REFUSED,
    SECOND_STEP_NEEDED,
    SUCCESS,
    THROTTLED,
    WRONG_CREDENTIALS,
    Prometheus,
)

T = TypeVar("T")

#: Where the metrics are served with METRICS ``on``, on the app's own port.
PATH = "/metrics"

#: The environ key under which the layer that answered a request notes its URL rule.
ROUTE = "yupnope.route"

#: The route of a request no rule took (a 404, a 405).
UNMATCHED = "unmatched"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Measured:
    """Time each request ``inner`` answers by its route; answer ``/metrics`` when ``expose``.

    ``inner`` is kept as ``app``, the name Werkzeug's middleware give the app they wrap.
    """

    def __init__(self, inner: WSGIApp, metrics: Prometheus, expose: bool) -> None:
        self.app = inner
        self.metrics = metrics
        self.expose = expose
        self._exposition: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.expose and environ.get("PATH_INFO") == PATH:
            return self.exposition()(environ, start_response)
        started = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            route = environ.get(ROUTE, UNMATCHED)
            self.metrics.served(route, time.perf_counter() - started)

    def exposition(self) -> WSGIApp:
        """Return prometheus_client's WSGI app over the scraped registry, made at first use."""
        if self._exposition is None:
            from prometheus_client import make_wsgi_app

            self._exposition = make_wsgi_app(self.metrics.scraped())
        return self._exposition


def counted_login(step: str, attempt: Callable[[], T]) -> T:
    """Return ``attempt()``, a login's ``step``, counting how it ended; its refusal goes on."""
    metrics = wiring.get().metrics
    try:
        result = attempt()
    except AccountError as exc:
        metrics.login(step, _outcome(exc))
        raise
    except Busy:
        metrics.login(step, BUSY)
        raise
    metrics.login(step, SECOND_STEP_NEEDED if isinstance(result, SecondStepNeeded) else SUCCESS)
    return result


def _outcome(refused: AccountError) -> str:
    """Return the outcome a login's refusal counts as."""
    if isinstance(refused, InvalidCredentials):
        return WRONG_CREDENTIALS
    if isinstance(refused, Throttled):
        return THROTTLED
    if isinstance(refused, ChallengeGone):
        return CHALLENGE_GONE
    return REFUSED


def listen(metrics: Prometheus, host: str, port: int) -> None:
    """Serve the metrics at ``host:port`` from a thread of this process (the serving one).

    prometheus_client's own server, as its documentation starts it in a pre-forking server's
    main process (gunicorn's ``when_ready``); it writes no log line, so the thread holds no
    lock a worker forked meanwhile could inherit held.
    """
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=metrics.scraped())


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics as METRICS asks; call after the other middleware.

    Nothing is installed with METRICS off.
    """
    found = wiring.get(app)
    if not isinstance(found.metrics, Prometheus):
        return
    expose = found.settings.metrics_address is None
    app.wsgi_app = Measured(app.wsgi_app, found.metrics, expose)  # type: ignore[method-assign]
    app.teardown_request(_note_route)


def _note_route(_exc: BaseException | None) -> None:
    """Note the URL rule that took this request, for Measured, as Flask's request ends."""
    rule = request.url_rule
    request.environ[ROUTE] = rule.rule if rule is not None else UNMATCHED
