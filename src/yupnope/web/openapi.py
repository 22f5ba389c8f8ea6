"""Describe the JSON API in OpenAPI 3.1, generated from its routes and models, never by hand.

flask-openapi3 rather than spectree or APIFlask: it builds OpenAPI 3.1 from pydantic 2 models
and validates bodies with the same models, and it lets a response be described as any media
type with headers and links, so the problem+json answers, Retry-After and the links a stateful
client follows are all in the description. spectree documents every response as
application/json; APIFlask's models are marshmallow's. Its cost: the app is flask-openapi3's
``OpenAPI``, a Flask subclass.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from flask import Response, current_app, jsonify
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from . import api
from .problems import Problem, from_validation_error

_DESCRIPTION = (
    "The accounts of this yupnope server, for programs. Log in with POST /api/v1/sessions and "
    "send the token as `Authorization: Bearer <token>`; a page of this site may use its session "
    "cookie instead. Every error is application/problem+json (RFC 9457) with a stable `code`."
)


def new_app(instance_path: str) -> OpenAPI:
    """Return a bare application whose API views flask-openapi3 validates and describes."""
    return OpenAPI(
        "yupnope",
        instance_path=instance_path,
        info=Info(title="yupnope", version=version("yupnope"), description=_DESCRIPTION),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        validation_error_status=422,
        validation_error_model=Problem,
        validation_error_callback=from_validation_error,
        # The description is served at /api/openapi.json; no pages that load scripts from a CDN.
        doc_ui=False,
    )


def init_app(app: OpenAPI) -> None:
    """Register the API's routes and serve their description at /api/openapi.json."""
    app.register_api(api.bp)
    app.add_url_rule("/api/openapi.json", "openapi", _specification)


def _specification() -> Response:
    """Serve the description, generated once per process."""
    spec: dict[str, Any] = current_app.api_doc  # type: ignore[attr-defined]
    return jsonify(spec)
