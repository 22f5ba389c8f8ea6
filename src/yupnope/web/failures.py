"""Answer every failure with a page a person can read: never a traceback, never a bare 500.

Under /api the same failures are answered as problem+json instead, for programs to read.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from ..errors import Busy
from . import problems
from .guards import API_PREFIX
from .problems import ApiError

log = logging.getLogger(__name__)

_TITLES = {
    400: "That request could not be understood",
    403: "Not allowed",
    404: "Nothing here",
    405: "Not that way",
    413: "Too much sent",
    503: "Service unavailable",
}


def init_app(app: Flask) -> None:
    """Render HTTP errors, database outages and unexpected errors as the error page."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_down)
    # No connection came free in time: the database is too slow to keep up, an outage too.
    app.register_error_handler(PoolTimeout, _database_down)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(ApiError, problems.response)


#: The problem code of each HTTP error the framework raises by itself.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}


def _api() -> bool:
    return request.path.startswith(API_PREFIX)


def _page(status: int, message: str) -> tuple[str, int]:
    title = _TITLES.get(status, "Something went wrong")
    return render_template("error.html", title=title, message=message, status=status), status


def _http_error(
    error: HTTPException,
) -> tuple[str, int, list[tuple[str, str]]] | HTTPException | Response:
    if error.code is None or error.code < 400:
        return error
    message = error.description or ""
    if error.code == 413:
        message = "The form was larger than this server accepts."
    if _api():
        kept = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        code = _CODES.get(error.code, "http_error")
        if error.code == 413:
            message = "The body is larger than this server accepts."
        return problems.response(ApiError(error.code, code, message, headers=kept))
    page, status = _page(error.code, message)
    # Keep the headers the error carries, such as Allow on a 405 (RFC 9110 15.5.6).
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return page, status, headers


def _database_down(
    error: OperationalError | PoolTimeout,
) -> tuple[str, int, dict[str, str]] | Response:
    # One line per refused request, whatever the driver's message spans: an outage answers
    # every request, and a log read line by line must stay readable through it.
    reason = " ".join(str(getattr(error, "orig", None) or error).split())
    log.error("database unavailable (%s %r): %s", request.method, request.path, reason)
    message = "The account database is not answering. Nothing was changed; try again in a minute."
    if _api():
        return problems.response(
            ApiError(503, "unavailable", message, headers={"Retry-After": "30"}, retry_after=30)
        )
    page, status = _page(503, message)
    return page, status, {"Retry-After": "30"}


def _busy(error: Busy) -> tuple[str, int, dict[str, str]] | Response:
    retry = {"Retry-After": str(error.retry_after)}
    if _api():
        return problems.response(
            ApiError(503, "busy", str(error), headers=retry, retry_after=error.retry_after)
        )
    page, status = _page(503, str(error))
    return page, status, retry


def _internal_error(error: InternalServerError) -> tuple[str, int] | Response:
    message = "Something went wrong on our side. Nothing was changed; try again."
    if _api():
        return problems.response(ApiError(500, "internal_error", message))
    return _page(500, message)
