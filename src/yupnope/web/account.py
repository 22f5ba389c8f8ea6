"""Serve the account page: change the password, log out everywhere, delete the account.

The page also shows the second factors, which web/factors.py and web/passkeys.py change, and
the security centre (email address, open sessions, apps signed in to, recent sign-ins:
web/security_centre.py).
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from .. import wiring
from ..errors import AccountChanged, AccountError
from ..second_factors.recovery import FEW_LEFT
from ..sudo import Sudo
from . import guards
from .answers import Refusal
from .pages import Page, fields, log_in_again
from .refusals import refusal

bp = Blueprint("account", __name__)


@bp.get("/account")
@guards.login_required
def account() -> Page:
    """Show the account page: password, second factors, sessions, deleting the account."""
    return _account_page()


@bp.post("/account/password")
@guards.login_required
def change_password() -> Page:
    """Change the password with the current one; the user's other sessions end."""
    record, user = guards.signed_in()
    current, new = fields("current_password", "new_password")
    try:
        wiring.accounts().change_password(
            user,
            current,
            new,
            guards.client(),
            guards.now(),
            keep_session=record.id,
        )
    except AccountChanged:
        return log_in_again()
    except AccountError as exc:
        return refused_account_page(refusal(exc), "current_password")
    return redirect(url_for("account.account", done="password"), 303)


@bp.post("/account/logout-everywhere")
@guards.login_required
def logout_everywhere() -> Response:
    """End every session of this user, this one included."""
    _, user = guards.signed_in()
    wiring.sessions().end_all(user.id, guards.client(), guards.now())
    guards.forget_cookie()
    return redirect(url_for("pages.login_form"), 303)


@bp.post("/account/delete")
@guards.login_required
def delete_account() -> Page:
    """Delete the account after checking its password."""
    _, user = guards.signed_in()
    (password,) = fields("password")
    try:
        wiring.accounts().delete_account(user, password, guards.client(), guards.now())
    except AccountChanged:
        return log_in_again()
    except AccountError as exc:
        # The delete form's password input has an id of its own on the account page.
        return refused_account_page(
            refusal(exc), "delete_password", {"password": "delete_password"}
        )
    guards.forget_cookie()
    return redirect(url_for("pages.login_form", done="deleted"), 303)


#: The form each field of the account page belongs to, for templates that mark a whole form.
_ACCOUNT_SECTIONS = {
    "current_password": "password",
    "new_password": "password",
    "delete_password": "delete",
    "passkey_name": "passkeys",
    "email": "email",
}


def refused_account_page(
    refused: Refusal, form_field: str, ids: dict[str, str] | None = None
) -> Page:
    """Render the account page with a refusal shown on its input (``form_field`` if none).

    ``ids`` maps an input's name to its id where the two differ on this page.
    """
    field = refused.field or form_field
    field = (ids or {}).get(field, field)
    return _account_page(field, refused.message, refused.status, refused.headers)


def _account_page(
    field: str | None = None,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Page:
    """Render the account page, with ``error`` shown on (and focusing) the input ``field``."""
    record, user = guards.signed_in()
    apps = wiring.authenticator_apps()
    email = wiring.get().settings.email
    page = render_template(
        "account.html",
        user=user,
        field=field,
        section=_ACCOUNT_SECTIONS.get(field or ""),
        error=error,
        done=request.args.get("done"),
        totp=apps.enabled(user.id),
        codes_left=apps.recovery.left(user.id),
        few_left=FEW_LEFT,
        passkeys=wiring.passkeys().of_user(user.id),
        sudo=Sudo.active(record, guards.now()),
        enrolment_due=guards.enrolment_due(record.second_factor),
        email=email,
        address=wiring.addresses().of(user.id) if email != "off" else None,
        sessions=wiring.sessions().of_user(user.id),
        apps=wiring.connections().alive(user.id),
        this_session=record.id,
        sign_ins=wiring.notices().recent_sign_ins(user.id),
    )
    return page, status, headers or {}
