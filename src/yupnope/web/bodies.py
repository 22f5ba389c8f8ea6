"""Read request bodies: a chunked one whole and within the limit, the API's as a JSON object.

A chunked body (RFC 9112 7.1) has no Content-Length, so Werkzeug's MAX_CONTENT_LENGTH cannot
refuse it up front: it reads the stream up to the limit and quietly stops there, and a body
whose chunks gunicorn cannot parse raises gunicorn's own exception in the middle of a view (a
500 with a traceback). ``ChunkedBodies`` reads such a body at the edge, before Flask, and hands
on a whole body with its length, or records why it could not, which ``refuse_unread_body``
answers with 400 or 413 before any guard or view runs.

Werkzeug would quietly read a body that is not JSON as none at all, and Python's json reads
NaN and Infinity; a client that sent the wrong thing is told what it sent instead.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import IO, Any, NoReturn

from flask import Flask, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from .. import wiring
from .answers import Refusal

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

#: Key in the WSGI environ of why a chunked body was not handed on: "malformed" or "too large".
UNREAD = "yupnope.unread_body"


def init_app(app: Flask) -> None:
    """Read chunked bodies at the edge, and refuse those that could not be read, first of all."""
    limit = wiring.get(app).settings.max_content_length
    app.wsgi_app = ChunkedBodies(app.wsgi_app, limit)  # type: ignore[method-assign]
    app.before_request(refuse_unread_body)


class ChunkedBodies:
    """Read a chunked request body whole, up to ``limit`` bytes, before the app sees it.

    The app then gets the body as if it had come with a Content-Length, so every reader
    (forms, JSON) sees all of it or, past the limit, none of it.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # RFC 9112 6.1: with Transfer-Encoding, chunked is the final coding and it alone
        # frames the body (gunicorn refuses any other, and Content-Length beside it).
        if "HTTP_TRANSFER_ENCODING" in environ:
            body, why = _read_whole(environ["wsgi.input"], self.limit)
            del environ["HTTP_TRANSFER_ENCODING"]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            if why:
                environ[UNREAD] = why
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def _read_whole(stream: IO[bytes], limit: int) -> tuple[bytes, str]:
    """Return the body and "", or no body and why not: "too large" or "malformed"."""
    parts: list[bytes] = []
    size = 0
    try:
        # One byte past the limit tells a body of exactly the limit from a larger one.
        while size <= limit:
            part = stream.read(limit + 1 - size)
            if not part:
                return b"".join(parts), ""
            parts.append(part)
            size += len(part)
    except (ParseException, OSError, ValueError):
        # gunicorn raises a ParseException for a malformed chunk or trailer and NoMoreData (an
        # OSError) for a body cut short; Werkzeug's development server an OSError for both.
        return b"", "malformed"
    return b"", "too large"


def refuse_unread_body() -> None:
    """Refuse a request whose chunked body was malformed (400) or over the limit (413)."""
    why = request.environ.get(UNREAD)
    if why == "too large":
        raise RequestEntityTooLarge()
    if why:
        raise BadRequest("The body's chunked encoding is malformed or cut short.")


def require_json_object() -> None:
    """Refuse a body that is not a JSON object before any view or model sees it."""
    if request.method not in _WITH_BODY:
        return
    if request.mimetype != "application/json":
        raise Refusal(
            415,
            "unsupported_media_type",
            "Send the body as JSON, with Content-Type: application/json.",
        )
    try:
        text = request.get_data(cache=True).decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise Refusal(400, "malformed_json", "The body is not UTF-8 text.") from None
    except (ValueError, RecursionError) as exc:
        raise Refusal(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Refusal(
            422,
            "validation",
            "The body must be a JSON object.",
            errors=[{"field": "", "message": "Input should be an object"}],
        )


def _refuse_constant(name: str) -> NoReturn:
    """Refuse NaN and Infinity, which JSON does not have (RFC 8259 6)."""
    raise ValueError(f"{name} is not JSON")
