"""Hold what every JSON API view shares: its JSON answers, and how its operations are documented.

The documented answers are OpenAPI response objects for web/openapi.py's description; each
view's ``responses`` gathers the ones it can give.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from pydantic import BaseModel

from ..models import User
from ..sessions import Started
from .problems import documented
from .schemas import SessionCreated, UserOut

#: Who may call an operation that needs a login: a bearer token, or a same-site cookie.
BEARER: list[dict[str, list[Any]]] = [{"bearer": []}]

RETRY = {"Retry-After": "Seconds to wait before trying again."}
CHALLENGED = {"WWW-Authenticate": "The Bearer challenge (RFC 6750)."}
# 403 on every unsafe method: a browser's request from another site is refused.
BODY = documented(400, 403, 413, 415, 422)
AUTH = documented(401, headers=CHALLENGED)
UNSAFE = documented(403, 422)
# flask-openapi3 documents a validation answer on every operation, as a bare JSON list unless
# the operation names its own; here it is named as what it would be, a problem.
NONE = documented(422)
THROTTLED = documented(429, 503, headers=RETRY)


def json_answer(model: BaseModel, status: int = 200) -> Response:
    """Return ``model`` as a JSON answer with ``status``."""
    return current_app.response_class(
        model.model_dump_json(), status=status, mimetype="application/json"
    )


def no_content() -> Response:
    """Return an empty 204 answer."""
    return current_app.response_class(status=204)


def session_created(user: User, started: Started, device: str) -> Response:
    """Return the 201 of a login: the session's token and end, the user, a device value."""
    created = SessionCreated(
        token=started.token,
        expires_at=started.record.expires_at,
        user=UserOut.model_validate(user),
        device=device,
    )
    return json_answer(created, 201)
