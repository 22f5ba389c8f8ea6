"""Serve the account's security centre: its email address, sessions, apps and recent sign-ins.

The address is given or changed here (confirmed by a link mailed to it) and removed, in sudo
mode, since it can reset the password; each open session, and each app signed in with
OpenID Connect, ends with a click.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for
from werkzeug.wrappers.response import Response

from .. import wiring
from ..errors import AccountError
from ..sudo import Sudo
from . import guards
from .account import refused_account_page
from .pages import Page, fields
from .refusals import refusal

bp = Blueprint("security", __name__)


def _sudo_or_confirm() -> Response | None:
    """Return the way to the password check unless this session proved its owner lately."""
    record, _ = guards.signed_in()
    if Sudo.active(record, guards.now()):
        return None
    back = url_for("account.account") + "#email"
    return redirect(url_for("factors.confirm", next=back), 303)


@bp.post("/account/email")
@guards.login_required
def set_email() -> Page:
    """Mail a link to confirm a new address; the old one (if any) hears of it."""
    if wiring.get().settings.email == "off":
        abort(404)
    (typed,) = fields("email")
    asked = _sudo_or_confirm()
    if asked is not None:
        return asked
    _, user = guards.signed_in()
    try:
        wiring.addresses().ask(user, typed, guards.now())
    except AccountError as exc:
        return refused_account_page(refusal(exc), "email")
    return redirect(url_for("account.account", done="email-sent") + "#email", 303)


@bp.post("/account/email/remove")
@guards.login_required
def remove_email() -> Page:
    """Remove the account's address, where the server does not require one."""
    if wiring.get().settings.email != "optional":
        abort(404)
    asked = _sudo_or_confirm()
    if asked is not None:
        return asked
    _, user = guards.signed_in()
    wiring.addresses().remove(user, guards.client(), guards.now())
    return redirect(url_for("account.account", done="email-removed") + "#email", 303)


@bp.post("/account/sessions/<int:session_id>/end")
@guards.login_required
def end_session(session_id: int) -> Response:
    """End one of the account's open sessions (this one logs out)."""
    record, user = guards.signed_in()
    wiring.sessions().end_one(user.id, session_id, guards.client(), guards.now())
    if session_id == record.id:
        guards.forget_cookie()
        return redirect(url_for("pages.login_form"), 303)
    return redirect(url_for("account.account", done="session-ended") + "#sessions", 303)


@bp.post("/account/apps/<grant>/sign-out")
@guards.login_required
def sign_out_of_app(grant: str) -> Response:
    """Sign the account out of one app: its tokens end, and its next sign-in asks again."""
    _, user = guards.signed_in()
    if not wiring.connections().sign_out(user, grant, guards.client(), guards.now()):
        abort(404)
    return redirect(url_for("account.account", done="app-signed-out") + "#apps", 303)
