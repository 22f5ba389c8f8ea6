"""Describe the JSON API's problem answers (RFC 9457): their body, and their OpenAPI entries."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, ConfigDict, Field

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
        "name_taken, validation, malformed_json, unsupported_media_type, not_authenticated, "
        "second_factor_required, reauthentication_required, ..."
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
    challenge: str | None = Field(
        default=None,
        description="For code second_factor_required: the half-done login to complete with a "
        "code at POST /api/v1/sessions/second-factor, within five minutes.",
    )


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
