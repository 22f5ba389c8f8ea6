"""Serve the JSON API's passkeys: list, rename and remove the caller's.

A passkey is made in a browser, on the account page (web/passkeys.py): its ceremony needs the
page's origin, which an API client does not have. Removing one needs sudo mode, as on the page.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from .. import wiring
from ..errors import AccountError
from ..models import Passkey
from . import bodies, guards
from .answers import Refusal
from .api_answers import AUTH, BEARER, BODY, NONE, UNSAFE, json_answer, no_content
from .bearer import caller
from .problems import documented
from .refusals import refusal
from .schemas import RequestBody
from .second_factor_api import require_sudo

_PASSKEYS = Tag(
    name="passkeys",
    description="Passkeys (WebAuthn), added on the account page: log in without a password, "
    "or as the second step after one.",
)

bp = APIBlueprint("passkey_api", __name__, url_prefix="/api/v1")

bp.before_request(bodies.require_json_object)

#: Largest id a path may name: ids are 32-bit on PostgreSQL.
_MAX_ID = 2**31 - 1


class PasskeyPath(BaseModel):
    """Name one of the caller's passkeys."""

    passkey_id: int = Field(ge=1, le=_MAX_ID)


class PasskeyName(RequestBody):
    """Carry a passkey's new name."""

    name: str = Field(min_length=1, max_length=64, description="Such as the device that holds it.")


class PasskeyOut(BaseModel):
    """Describe one of the caller's passkeys (never its key or credential id)."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Its last login or check, if any.")
    synced: bool = Field(description="Whether it said it is synced to other devices.")

    @classmethod
    def of(cls, record: Passkey) -> PasskeyOut:
        """Describe ``record``."""
        return cls(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            synced=record.backed_up,
        )


class PasskeyList(BaseModel):
    """List the caller's passkeys, oldest first."""

    passkeys: list[PasskeyOut]


_NOT_FOUND = "You have no passkey with that id."


@bp.get(
    "/me/passkeys",
    tags=[_PASSKEYS],
    operation_id="listPasskeys",
    security=BEARER,
    responses={200: PasskeyList, **AUTH, **NONE},
)
def list_passkeys() -> Response:
    """List the account's passkeys: names, when added and last used."""
    records = wiring.passkeys().of_user(caller().user.id)
    return json_answer(PasskeyList(passkeys=[PasskeyOut.of(record) for record in records]))


@bp.patch(
    "/me/passkeys/<int:passkey_id>",
    tags=[_PASSKEYS],
    operation_id="renamePasskey",
    security=BEARER,
    responses={204: None, **AUTH, **BODY, **documented(404)},
)
def rename_passkey(path: PasskeyPath, body: PasskeyName) -> Response:
    """Rename one of the account's passkeys."""
    user = caller().user
    try:
        found = wiring.passkeys().rename(user, path.passkey_id, body.name)
    except AccountError as exc:
        raise refusal(exc) from None
    if not found:
        raise Refusal(404, "not_found", _NOT_FOUND)
    return no_content()


@bp.delete(
    "/me/passkeys/<int:passkey_id>",
    tags=[_PASSKEYS],
    operation_id="removePasskey",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE, **documented(404)},
)
def remove_passkey(path: PasskeyPath) -> Response:
    """Remove one of the account's passkeys. Needs sudo mode (POST /api/v1/me/sudo)."""
    found = caller()
    require_sudo(found)
    if not wiring.passkeys().remove(found.user, path.passkey_id, guards.client(), guards.now()):
        raise Refusal(404, "not_found", _NOT_FOUND)
    return no_content()
