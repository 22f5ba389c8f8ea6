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
from pydantic import ValidationError

from ..config import Settings
from . import api, apps_api, mail_api, passkey_api, second_factor_api
from .answers import Refusal, problem
from .problems import FieldError, Problem

_DESCRIPTION = (
    "The accounts of this yupnope server, for programs. Log in with POST /api/v1/sessions and "
    "send the token as `Authorization: Bearer <token>`; a page of this site may use its session "
    "cookie instead. Keep the `device` of each login's answer and send it with the next login "
    "to the same account, so that strangers' failures cannot lock you out. Every error is "
    "application/problem+json (RFC 9457) with a stable `code`."
)


def new_app(settings: Settings) -> OpenAPI:
    """Return a bare application whose API views flask-openapi3 validates and describes."""
    app = OpenAPI(
        "yupnope",
        instance_path=settings.instance_path,
        info=Info(title="yupnope", version=version("yupnope"), description=_DESCRIPTION),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        validation_error_status=422,
        validation_error_model=Problem,
        validation_error_callback=_validation_failed,
        # The description is served at /api/openapi.json; no pages that load scripts from a CDN.
        doc_ui=False,
    )
    # Werkzeug refuses a larger body with 413 before it is read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    return app


def init_app(app: OpenAPI) -> None:
    """Register the API's routes and serve their description at /api/openapi.json."""
    app.register_api(api.bp)
    app.register_api(second_factor_api.bp)
    app.register_api(passkey_api.bp)
    app.register_api(mail_api.bp)
    app.register_api(apps_api.bp)
    app.add_url_rule("/api/openapi.json", "openapi", _specification)


def _specification() -> Response:
    """Serve the description, generated once per process."""
    spec: dict[str, Any] = current_app.api_doc  # type: ignore[attr-defined]
    return jsonify(spec)


def _validation_failed(error: ValidationError) -> Response:
    """Return the 422 problem for a request body the API's models refused."""
    errors = [
        FieldError(field=".".join(str(part) for part in item["loc"]), message=item["msg"])
        for item in error.errors(include_url=False, include_input=False)
    ]
    detail = "Some members of the request are missing or wrong."
    return problem(Refusal(422, "validation", detail, errors=errors))
