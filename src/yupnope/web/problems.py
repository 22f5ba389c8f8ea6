"""Answer the JSON API's failures as ``application/problem+json`` (RFC 9457).

Every problem carries a stable machine-readable ``code`` beside the human ``detail``, so clients
branch on the code and show the detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, current_app
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import (
    AccountError,
    InvalidTokenRequest,
    InvalidUsername,
    PasswordChangeRequired,
    SessionRequired,
    SignupClosed,
    Throttled,
    TooManyTokens,
    UsernameTaken,
    WeakPassword,
)

MEDIA_TYPE = "application/problem+json"

#: Start of every problem's ``type``: a URN, since the codes are names, not pages to fetch.
TYPE_PREFIX = "urn:yupnope:problem:"


class FieldError(BaseModel):
    """Say what is wrong with one member of the request body."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted path of the member, empty for the body as a whole.")
    message: str


class Problem(BaseModel):
    """Describe a refused or failed request (RFC 9457) with a stable ``code``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A URN that names the problem: urn:yupnope:problem:<code>.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What went wrong, in words fit to show a person.")
    code: str = Field(
        description="Stable machine-readable name: bad_credentials, throttled, weak_password, "
        "name_taken, validation, malformed_json, unsupported_media_type, not_authenticated, ..."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="For code validation: each member that was refused, and why."
    )
    reason: str | None = Field(
        default=None, description="For code weak_password: which rule the password broke."
    )
    retry_after: int | None = Field(
        default=None, description="For codes throttled and busy: seconds to wait, as Retry-After."
    )


class ApiError(Exception):
    """Stop an API request with a problem response; raised anywhere under /api."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def response(error: ApiError) -> Response:
    """Return the problem+json response for ``error``."""
    body = Problem(
        type=TYPE_PREFIX + error.code,
        title=HTTPStatus(error.status).phrase,
        status=error.status,
        detail=error.detail,
        code=error.code,
        **error.extra,
    )
    answer = current_app.response_class(
        body.model_dump_json(exclude_none=True), status=error.status, mimetype=MEDIA_TYPE
    )
    answer.headers.update(error.headers)
    return answer


def throttled(exc: Throttled) -> ApiError:
    """Return the 429 problem for an attempt the throttle refused, with its wait."""
    return ApiError(
        429,
        "throttled",
        str(exc),
        headers={"Retry-After": str(exc.retry_after)},
        retry_after=exc.retry_after,
    )


#: The status and code of each refusal by the account rules that needs no more than its words.
_REFUSALS: dict[type[AccountError], tuple[int, str]] = {
    UsernameTaken: (409, "name_taken"),
    InvalidUsername: (422, "invalid_username"),
    SignupClosed: (403, "signup_closed"),
    PasswordChangeRequired: (403, "password_change_required"),
    SessionRequired: (403, "session_required"),
    TooManyTokens: (409, "too_many_tokens"),
}


def refusal(exc: AccountError) -> ApiError:
    """Return the problem that answers a refusal by the account rules."""
    if isinstance(exc, Throttled):
        return throttled(exc)
    if isinstance(exc, WeakPassword):
        return ApiError(422, "weak_password", str(exc), reason=exc.reason)
    if isinstance(exc, InvalidTokenRequest):
        errors = [{"field": exc.field, "message": str(exc)}]
        return ApiError(422, "validation", str(exc), errors=errors)
    status, code = _REFUSALS.get(type(exc), (400, "refused"))
    return ApiError(status, code, str(exc))


def from_validation_error(error: ValidationError) -> Response:
    """Return the 422 problem for a request body the API's models refused."""
    errors = [
        FieldError(field=".".join(str(part) for part in item["loc"]), message=item["msg"])
        for item in error.errors(include_url=False, include_input=False)
    ]
    detail = "Some members of the request are missing or wrong."
    return response(ApiError(422, "validation", detail, errors=errors))


def documented(*statuses: int, headers: Mapping[str, str] | None = None) -> ResponseDict:
    """Return OpenAPI response objects for problem answers with these statuses.

    ``headers`` maps header names to their descriptions, for each of the statuses.
    """
    schema = {"$ref": f"#/components/schemas/{Problem.__name__}"}
    described = {
        name: {"description": text, "schema": {"type": "string"}}
        for name, text in (headers or {}).items()
    }
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": schema}},
            **({"headers": described} if described else {}),
        }
        for status in statuses
    }
