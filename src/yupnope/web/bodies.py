"""Read the JSON API's request bodies: a JSON object in UTF-8, or a clear refusal.

Werkzeug would quietly read a body that is not JSON as none at all, and Python's json reads
NaN and Infinity; a client that sent the wrong thing is told what it sent instead.
"""

from __future__ import annotations

import json
from typing import NoReturn

from flask import request

from .answers import Refusal

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


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
