"""Refuse requests that need a hash at the door while every hashing slot and place in line is full.

Under a flood of logins the refusals are most of the work. Each one ran the whole Flask stack
(the request context, the session, the hooks, a rendered page: about 0.4 ms of CPU) before the
hashing gate said no, and the pages of signed-in users waited behind them for the request
threads, in the order the requests came. Here a request for a view marked ``hashes`` is checked
against the gate on the bare WSGI environ, before Flask runs, and refused with the answer's
bytes kept from the first time: a few microseconds, so the line of requests ahead of a page
empties quickly.

The answer is the one the app gives (web/failures' 503 with Retry-After, the security headers,
CORS for a listed origin): the app renders it itself the first time each variant is asked for,
for an anonymous request (no cookie, no token, no body), and it is kept. The variants are few
and bounded by the configuration: the route, http or https, and the Origin when the operator
listed it for CORS (any other Origin gets no CORS header, so it needs no variant of its own).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, request

from .. import wiring
from ..errors import Busy
from ..hashing import Gate
from ..metrics import DOOR, Metrics
from .metrics import ROUTE

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute that marks a view which runs argon2.
_MARK = "yupnope_hashes"

#: The methods of a marked view that hash: its GET, if any, shows a form.
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The environ key that asks the app to answer as the gate would: busy.
_PROBE = "yupnope.admission_probe"

#: What a kept answer must not carry from the request that rendered it.
_REQUEST_BOUND = frozenset({"set-cookie", "date"})

#: Request headers the rendering request goes without: it speaks for nobody.
_CREDENTIALS = ("HTTP_COOKIE", "HTTP_AUTHORIZATION")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def hashes(view: F) -> F:
    """Mark a view that runs argon2, so it is refused at the door while the gate is full."""
    setattr(view, _MARK, True)
    return view


@dataclass(frozen=True)
class _Answer:
    """Hold a whole answer as the app gave it: status line, headers and body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


class Admission:
    """Answer requests for hashing views with the busy answer at once while ``gate`` is full."""

    def __init__(
        self, app: Flask, inner: WSGIApp, gate: Gate, origins: frozenset[str], metrics: Metrics
    ) -> None:
        self.app = app
        self.inner = inner
        self.gate = gate
        self.origins = origins
        self.metrics = metrics
        self._routes: frozenset[tuple[str, str]] | None = None
        self._answers: dict[tuple[str, str, str | None], _Answer] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.gate.saturated():
            route = (environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
            if route in self.routes():
                # The path is a rule here: web/metrics times the request under it.
                environ[ROUTE] = route[1]
                self.metrics.busy(DOOR)
                answer = self._answer(environ, route[1])
                start_response(answer.status, answer.headers)
                return [answer.body]
        return self.inner(environ, start_response)

    def routes(self) -> frozenset[tuple[str, str]]:
        """Return the method and path of every view marked ``hashes`` (read once, when needed).

        Read at the first refusal rather than at start, when every blueprint is registered.
        """
        if self._routes is None:
            self._routes = frozenset(
                (method, rule.rule)
                for rule in self.app.url_map.iter_rules()
                if getattr(self.app.view_functions[rule.endpoint], _MARK, False)
                for method in rule.methods or ()
                if method in _UNSAFE
            )
        return self._routes

    def _answer(self, environ: dict[str, Any], path: str) -> _Answer:
        origin = environ.get("HTTP_ORIGIN")
        listed = origin if origin in self.origins else None
        key = (path, str(environ.get("wsgi.url_scheme", "http")), listed)
        answer = self._answers.get(key)
        if answer is None:
            with self._lock:
                answer = self._answers.get(key) or self._render(environ, listed)
                self._answers[key] = answer
        return answer

    def _render(self, environ: dict[str, Any], origin: str | None) -> _Answer:
        """Return the app's own busy answer to an anonymous, bodiless copy of ``environ``."""
        probe = {key: value for key, value in environ.items() if key not in _CREDENTIALS}
        probe.pop("HTTP_ORIGIN", None)
        if origin is not None:
            probe["HTTP_ORIGIN"] = origin
        probe.update({_PROBE: True, "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()})
        probe.pop("HTTP_TRANSFER_ENCODING", None)
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def keep(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started.append((status, headers))

        result = self.inner(probe, keep)
        try:
            body = b"".join(result)
        finally:
            # PEP 3333: close() ends the request (Flask's teardown runs there).
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[0]
        kept = [(name, value) for name, value in headers if name.lower() not in _REQUEST_BOUND]
        return _Answer(status, kept, body)


def init_app(app: Flask) -> None:
    """Refuse hashing views at the door; call before anything else wraps the app or hooks in.

    Inside the proxy middleware, so the scheme is the client's; the probe's hook first of all.
    """
    found = wiring.get(app)
    gate, origins = found.hasher.gate, found.settings.allowed_origins
    app.wsgi_app = Admission(app, app.wsgi_app, gate, origins, found.metrics)  # type: ignore[method-assign]
    app.before_request(answer_probe)


def answer_probe() -> None:
    """Answer the door's rendering request as the gate does when full, before anything else."""
    if request.environ.get(_PROBE):
        raise Busy()
