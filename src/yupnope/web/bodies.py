"""Read request bodies: only with a Content-Length, and the API's as a JSON object.

A body framed by Transfer-Encoding (chunked, RFC 9112 7.1) has no length up front, so Werkzeug's
MAX_CONTENT_LENGTH cannot refuse it before reading, and granian undoes the chunking out of the
app's sight: a malformed or cut-short body reaches the app as a shorter one, and a login form
cut short is a login attempt with a password the client never sent. No browser form and no
JSON client of this API needs chunking, so such a request is refused with 411 Length Required
(RFC 9112 6.3 allows it) before any guard or view runs; a proxy that buffers the body (nginx by
default) sends it on with a Content-Length.

Werkzeug would quietly read a body that is not JSON as none at all, and Python's json reads
NaN and Infinity; a client that sent the wrong thing is told what it sent instead.
"""

from __future__ import annotations

import json
from typing import NoReturn

from flask import Flask, request
from werkzeug.exceptions import LengthRequired

from .answers import CHECK_PREFIX, Refusal

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def init_app(app: Flask) -> None:
    """Refuse bodies framed by Transfer-Encoding, first of all."""
    app.before_request(refuse_transfer_coding)


def refuse_transfer_coding() -> None:
    """Refuse a request whose body comes with Transfer-Encoding instead of a Content-Length."""
    if "Transfer-Encoding" in request.headers and not request.path.startswith(CHECK_PREFIX):
        raise LengthRequired("Send the body with a Content-Length: chunked bodies are refused.")


def require_json_object() -> None:
    """Refuse a body that is not a JSON object before any view or model sees it.

    No body at all, and no Content-Type, passes: an operation that takes none (starting an
    authenticator app's enrolment) is asked that way, and one that needs a body refuses it
    by its model (422).
    """
    if request.method not in _WITH_BODY:
        return
    if not request.content_type and not request.content_length:
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
