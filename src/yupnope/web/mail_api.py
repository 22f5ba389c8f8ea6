"""Serve the JSON API's email: reset a forgotten password, and the caller's own address.

The same rules as the pages (resets.py, emails.py). A reset request answers 202 whether or not
the address is any account's; the link mailed is ``<PUBLIC_URL>/reset/<token>``, and its token
sets the new password here as on the page. Changing the caller's address needs sudo mode.
"""

from __future__ import annotations

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from .. import wiring
from ..errors import AccountError
from ..mail.errors import MailOff
from . import bodies, guards
from .api_answers import AUTH, BEARER, BODY, NONE, THROTTLED, UNSAFE, json_answer, no_content
from .bearer import caller
from .problems import documented
from .refusals import refusal
from .schemas import NewPassword, RequestBody
from .second_factor_api import require_sudo

_EMAIL = Tag(
    name="email",
    description="Reset a forgotten password by mail, and the account's email address.",
)

bp = APIBlueprint("mail_api", __name__, url_prefix="/api/v1")

bp.before_request(bodies.require_json_object)


def _email_on() -> None:
    """Refuse (404) what needs email on a server whose accounts have no addresses."""
    if wiring.get().settings.email == "off":
        raise refusal(MailOff())


class ResetAsked(RequestBody):
    """Carry the address of the account whose password is forgotten."""

    email: str = Field(min_length=1, max_length=254, description="The account's email address.")


class ResetPath(BaseModel):
    """Name the token of a reset link: the last part of ``<PUBLIC_URL>/reset/<token>``."""

    token: str = Field(min_length=1, max_length=128)


class NewPasswordBody(RequestBody):
    """Carry the new password a reset link allows."""

    new_password: NewPassword


class EmailBody(RequestBody):
    """Carry an email address."""

    email: str = Field(min_length=1, max_length=254)


class EmailOut(BaseModel):
    """Say the caller's verified email address, or that there is none."""

    email: str | None = Field(description="Verified: it receives resets and logs in.")


@bp.post(
    "/password-resets",
    tags=[_EMAIL],
    operation_id="askPasswordReset",
    responses={202: None, **BODY, **THROTTLED, **documented(404)},
)
def ask_reset(body: ResetAsked) -> Response:
    """Mail a reset link to ``email`` if it is a verified account's; the answer never says."""
    _email_on()
    try:
        wiring.resets().ask(body.email, guards.client(), guards.now())
    except AccountError as exc:
        raise refusal(exc) from None
    return Response(status=202)


@bp.post(
    "/password-resets/<token>",
    tags=[_EMAIL],
    operation_id="completePasswordReset",
    responses={204: None, **BODY, **THROTTLED, **documented(404, 410)},
)
def complete_reset(path: ResetPath, body: NewPasswordBody) -> Response:
    """Set the new password a reset link allows: every session and token of the account ends.

    A token used already, expired, or made before the password last changed is 410
    reset_token_invalid.
    """
    _email_on()
    try:
        wiring.resets().complete(path.token, body.new_password, guards.client(), guards.now())
    except AccountError as exc:
        raise refusal(exc) from None
    return no_content()


@bp.get(
    "/me/email",
    tags=[_EMAIL],
    operation_id="getEmail",
    security=BEARER,
    responses={200: EmailOut, **AUTH, **NONE, **documented(404)},
)
def get_email() -> Response:
    """Say the account's verified email address."""
    user = caller().user
    _email_on()
    found = wiring.addresses().of(user.id)
    return json_answer(EmailOut(email=found.address if found else None))


@bp.put(
    "/me/email",
    tags=[_EMAIL],
    operation_id="setEmail",
    security=BEARER,
    responses={202: None, **AUTH, **BODY, **UNSAFE, **documented(404, 409)},
)
def set_email(body: EmailBody) -> Response:
    """Mail a link to confirm a new address (sudo mode); the old one stays until then."""
    found = caller()
    _email_on()
    require_sudo(found)
    try:
        wiring.addresses().ask(found.user, body.email, guards.now())
    except AccountError as exc:
        raise refusal(exc) from None
    return Response(status=202)
