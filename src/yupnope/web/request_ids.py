"""Give every request an id: in each log line written while it is answered, and in its answer.

The id is random (64 bits, hex), or the ``X-Request-Id`` a trusted proxy sent (TRUSTED_PROXIES,
web/proxies.py), so one id follows a request from the proxy's log into this one. A client's
own header is never believed: it could make its requests look like another's in the log. A
proxy's is taken only when short and printable ASCII, so it is as safe in a log line and a
header as ours. The answer carries the id in its own ``X-Request-Id``, to quote in a report.

Outermost of the app's middleware, so the answers given before Flask runs (web/checkpoint,
web/admission) carry it too, and the connection's own address is still the one it came from.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from .. import logs, wiring
from ..config import Settings
from .proxies import through_trusted_proxy

#: The header that carries the id, both ways.
HEADER = "X-Request-Id"

#: A proxy's id taken as it is: 1 to 64 printable ASCII characters, no space.
_TAKEN = re.compile(r"[\x21-\x7e]{1,64}")

#: Random bytes in a new id: as many as W3C Trace Context's span id, unique enough for logs.
_ID_BYTES = 8

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestIds:
    """Set each request's id for the log while ``inner`` answers it, and send it back.

    ``inner`` is kept as ``app``, the name Werkzeug's middleware give the app they wrap.
    """

    def __init__(self, inner: WSGIApp, settings: Settings) -> None:
        self.app = inner
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        if given and _TAKEN.fullmatch(given) and self.trusted(environ):
            request_id = given
        else:
            request_id = secrets.token_hex(_ID_BYTES)

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            # A copy: web/admission's kept answers hand the same list to every request.
            return start_response(status, [*headers, (HEADER, request_id)], *exc_info)

        token = logs.request_id.set(request_id)
        try:
            return self.app(environ, start)
        finally:
            logs.request_id.reset(token)

    def trusted(self, environ: dict[str, Any]) -> bool:
        """Return whether the request came through a proxy TRUSTED_PROXIES names."""
        return through_trusted_proxy(self.settings, environ.get("REMOTE_ADDR", ""))


def init_app(app: Flask) -> None:
    """Give every request an id; call after every other middleware is installed."""
    settings = wiring.get(app).settings
    app.wsgi_app = RequestIds(app.wsgi_app, settings)  # type: ignore[method-assign]
