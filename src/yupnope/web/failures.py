"""Answer every failure in the one shape of answers.py: never a traceback, never a bare 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from ..errors import Busy
from .answers import Refusal, answer, for_api

log = logging.getLogger(__name__)

#: The problem code of each HTTP error the framework raises by itself.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}

#: Seconds a client is asked to wait while the database does not answer.
_OUTAGE_RETRY_SECONDS = 30


def init_app(app: Flask) -> None:
    """Answer refusals, HTTP errors, database outages, busy hashing and unexpected errors."""
    app.register_error_handler(Refusal, answer)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_down)
    # No connection came free in time: the database is too slow to keep up, an outage too.
    app.register_error_handler(PoolTimeout, _database_down)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(Busy, _busy)


def _http_error(error: HTTPException) -> HTTPException | Response:
    if error.code is None or error.code < 400:
        return error
    message = error.description or ""
    if error.code == 413:
        message = (
            "The body is larger than this server accepts."
            if for_api()
            else "The form was larger than this server accepts."
        )
    # Keep the headers the error carries, such as Allow on a 405 (RFC 9110 15.5.6).
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    code = _CODES.get(error.code, "http_error")
    return answer(Refusal(error.code, code, message, headers=headers))


def _database_down(error: OperationalError | PoolTimeout) -> Response:
    # One line per refused request, whatever the driver's message spans: an outage answers
    # every request, and a log read line by line must stay readable through it.
    reason = " ".join(str(getattr(error, "orig", None) or error).split())
    log.error("database unavailable (%s %r): %s", request.method, request.path, reason)
    message = "The account database is not answering. Nothing was changed; try again in a minute."
    return answer(
        Refusal(
            503,
            "unavailable",
            message,
            headers={"Retry-After": str(_OUTAGE_RETRY_SECONDS)},
            retry_after=_OUTAGE_RETRY_SECONDS,
        )
    )


def _busy(error: Busy) -> Response:
    retry = {"Retry-After": str(error.retry_after)}
    return answer(Refusal(503, "busy", str(error), headers=retry, retry_after=error.retry_after))


def _internal_error(error: InternalServerError) -> Response:
    message = "Something went wrong on our side. Nothing was changed; try again."
    return answer(Refusal(500, "internal_error", message))
