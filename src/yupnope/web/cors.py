"""Let the pages of origins the operator listed call the JSON API (CORS), and no others.

Only API paths answer with CORS headers, only to a listed origin, and never with
Access-Control-Allow-Credentials: a page of another site authenticates with a bearer token,
never with the user's cookie.
"""

from __future__ import annotations

from flask import Flask, Response, request

from .. import wiring
from .answers import for_api
from .guards import cors_origins

#: Seconds a browser may keep a preflight's answer.
PREFLIGHT_MAX_AGE = 600

_ALLOWED_METHODS = "GET, POST, DELETE"
_ALLOWED_HEADERS = "Authorization, Content-Type"
_EXPOSED_HEADERS = "Location, Retry-After, WWW-Authenticate"


def init_app(app: Flask) -> None:
    """Answer preflights and mark API answers for the listed origins, when there are any."""
    if wiring.get(app).settings.allowed_origins:
        app.after_request(_allow)


def _allow(response: Response) -> Response:
    if not for_api():
        return response
    # The answer depends on Origin whether or not this one is listed, so caches must key on it.
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin is None or origin not in cors_origins():
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers["Access-Control-Allow-Methods"] = _ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    else:
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
    return response
