"""Answer the common forward-auth check before Flask runs: a session cookie, and nothing else.

A proxy asks before every request to every app it guards, so the check is the request this
server answers most. Through Flask it cost 0.69 ms of CPU against 0.15 ms for a bare app (B9 in
docs/benchmarks.md): most of it the request cycle and the hooks every request runs, which a
check needs little of. Here a check that comes as proxies send it for a signed-in browser is
answered on the bare WSGI environ: ``GET`` or ``HEAD`` to ``/auth/request`` or
``/auth/forward``, no ``Authorization``, exactly one session cookie, and the original request
in the proxy's headers. Anything else goes on to Flask unchanged (web/forward.py): tokens and
Basic credentials, no cookie or several, a check that does not say what it is about, the
request on which this process prunes, and a database that fails (Flask answers its outage).

The answer is the one Flask's views give, made by the same functions: the session found by
``Sessions.find`` (expired or idle sessions deleted on sight, a disabled user refused, the
last-seen time written at most once per touch interval, nothing kept between requests), the
caller and the answer by web/verdicts.py, then what Flask's hooks add to every answer: the
security headers (web/headers.harden) and the cookie's removal and ``Vary: Cookie``
(web/cookies). That rendering cost more than the decision, and depends on nothing the
verdict, the scheme, the method and the cookie's removal do not say, so each is kept under
those and sent again (``Checkpoint._rendered``). tests/test_checkpoint.py holds both doors to
the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Request

from .. import wiring
from ..snapshots import SessionSnapshot, UserSnapshot
from . import headers, verdicts
from .cookies import ServerSession, ServerSessionInterface
from .metrics import ROUTE
from .verdicts import Verdict

#: The checks answered here, and whether each sends browsers to the login page itself (nginx's
#: cannot: it takes only 2xx, 401 and 403).
_DOORS = {"/auth/request": False, "/auth/forward": True}

#: The methods proxies check with for a page: others go on to Flask.
_METHODS = frozenset({"GET", "HEAD"})

#: How many answers are kept rendered: one per user and groups allowed in, and the few of
#: each refusal, in all but a large deployment.
_KEPT = 512

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Rendered:
    """Hold a whole answer as Flask would send it: status line, headers and body."""

    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Checkpoint:
    """Answer the common forward-auth check at once; pass every other request to ``inner``.

    ``inner`` is kept as ``app``, the name Werkzeug's middleware give the app they wrap.
    """

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        cookies = app.session_interface
        if not isinstance(cookies, ServerSessionInterface):
            raise RuntimeError("the server-side session interface is not installed")
        self.app = inner
        self.cookies = cookies
        self.wiring = wiring.get(app)
        self.settings = self.wiring.settings
        self.always = headers.always(self.settings.cookie_domain)
        self._kept: dict[tuple[Any, ...], Rendered] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self.answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        # The path is the rule here: web/metrics times the request under it.
        environ[ROUTE] = environ["PATH_INFO"]
        start_response(answer.status, list(answer.headers))
        return [answer.body]

    def answer(self, environ: dict[str, Any]) -> Rendered | None:
        """Return the answer to a common check, or None for a request Flask must answer."""
        redirect_browsers = _DOORS.get(environ.get("PATH_INFO", ""))
        if (
            redirect_browsers is None
            or environ.get("REQUEST_METHOD") not in _METHODS
            or "HTTP_AUTHORIZATION" in environ
            # Flask's hook prunes on this process's first request, then once an hour.
            or time.monotonic() >= self.wiring.next_prune
        ):
            return None
        request = Request(environ, populate_request=False)
        tokens = request.cookies.getlist(self.cookies.name)
        if len(tokens) != 1 or not tokens[0]:
            return None
        full_url = None if redirect_browsers else request.headers.get("X-Original-URL")
        original = verdicts.original(request.headers, full_url)
        if original is None:
            return None
        cookie = ServerSession(tokens[0])
        try:
            found = cookie.look_up(self._find)
        except SQLAlchemyError:
            # Flask asks again and answers the outage as every page does (web/failures).
            return None
        who = verdicts.cookie_caller(found, self.settings)
        settings = self.settings
        verdict = verdicts.verdict(original, who, request.headers, settings, redirect_browsers)
        return self._rendered(verdict, cookie, environ, request.is_secure)

    def _rendered(
        self, verdict: Verdict, cookie: ServerSession, environ: dict[str, Any], https: bool
    ) -> Rendered:
        """Return ``verdict`` as Flask would send it: its hooks' headers added, as bytes.

        Kept, and the same answer sent again from the copy: what the hooks add depends only
        on the verdict, the cookie's removal, the scheme and the method (HEAD's empty body),
        all in the key, so a copy is the answer, not a stale one; the lookup and the decision
        are made at every check. Kept until there are _KEPT, then all dropped: a bound on what
        the original URLs in ``Location`` may fill.
        """
        known = (verdict, cookie.cleared, https, environ.get("REQUEST_METHOD", ""))
        rendered = self._kept.get(known)
        if rendered is None:
            response = verdict.response()
            # What Flask's hooks add, in their order: web/headers, then the session interface.
            headers.harden(response, self.always, https, from_view=True)
            self.cookies.write(cookie, response, https)
            body, status, sent = response.get_wsgi_response(environ)
            rendered = Rendered(status, tuple(sent), b"".join(body))
            response.close()
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[known] = rendered
        return rendered

    def _find(self, token: str) -> tuple[SessionSnapshot, UserSnapshot] | None:
        """Return the live session of ``token`` with its user, as guards.current finds it."""
        with self.wiring.own_sessions() as sessions:
            return sessions.find(token, datetime.now(UTC))


def init_app(app: Flask) -> None:
    """Answer the common check before Flask; call once the session interface is installed.

    Outside web/admission's door, which only logins need, and inside web/proxies, so the
    scheme is the client's, as Flask's hooks read it.
    """
    app.wsgi_app = Checkpoint(app, app.wsgi_app)  # type: ignore[method-assign]
