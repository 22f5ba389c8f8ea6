"""Answer a refused request in one shape: a page for a person, problem+json under /api.

Every refusal the web layer makes, whether from a domain error (refusals.py), a failed guard
or a failure of the server, is a Refusal; ``answer`` renders it as the error page, or as an
``application/problem+json`` body (RFC 9457) for the JSON API, with a stable ``code`` beside
the message, so programs branch on the code and show the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, current_app, render_template, request

from .problems import MEDIA_TYPE, TYPE_PREFIX, Problem

#: Start of every JSON API path, the description's included.
API_PREFIX = "/api/"

#: Where reverse proxies ask their forward-auth checks (web/forward.py). Such a check reads no
#: body and changes nothing, and it comes with the headers of the request it is about (that
#: request's Host, its method, its Transfer-Encoding): the refusals meant for this server's own
#: pages and forms do not apply to it.
CHECK_PREFIX = "/auth/"

#: The challenge a 401 from the API carries (RFC 6750 3).
CHALLENGE = 'Bearer realm="yupnope"'

#: The title of the error page for each status.
_TITLES = {
    400: "That request could not be understood",
    403: "Not allowed",
    404: "Nothing here",
    405: "Not that way",
    413: "Too much sent",
    503: "Service unavailable",
}


class Refusal(Exception):
    """Stop a request with a status, a stable code, a message, and the input it is about.

    ``extra`` holds the problem members some codes carry (``retry_after``, ``reason``,
    ``errors``); ``headers`` go on the answer whichever form it takes.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        self.extra = extra


def for_api() -> bool:
    """Return whether this request is one of the JSON API's."""
    return request.path.startswith(API_PREFIX)


def answer(refusal: Refusal) -> Response:
    """Return ``refusal`` as problem+json under /api, else as the error page."""
    if for_api():
        return problem(refusal)
    title = _TITLES.get(refusal.status, "Something went wrong")
    page = render_template(
        "error.html", title=title, message=refusal.message, status=refusal.status
    )
    response = current_app.make_response((page, refusal.status))
    response.headers.update(refusal.headers)
    return response


def problem(refusal: Refusal) -> Response:
    """Return the problem+json response for ``refusal``."""
    body = Problem(
        type=TYPE_PREFIX + refusal.code,
        title=HTTPStatus(refusal.status).phrase,
        status=refusal.status,
        detail=refusal.message,
        code=refusal.code,
        **refusal.extra,
    )
    response = current_app.response_class(
        body.model_dump_json(exclude_none=True), status=refusal.status, mimetype=MEDIA_TYPE
    )
    response.headers.update(refusal.headers)
    return response
