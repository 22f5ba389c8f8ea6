"""Serve the account's second factors: set up or remove the authenticator app, recovery codes.

And the page that asks for the password again before any of these changes (sudo mode, sudo.py):
a change made outside that window goes there first and comes back.
"""

from __future__ import annotations

import segno
from flask import Blueprint, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers.response import Response

from .. import wiring
from ..errors import AccountError
from ..second_factors.apps import Enrolment
from ..sudo import Sudo
from . import guards
from .pages import Page, fields
from .refusals import refusal
from .returns import safe_return_url

bp = Blueprint("factors", __name__)

#: Pixels per module of the QR code: 41 modules and the quiet zone make it about 250 px wide.
QR_SCALE = 5


@bp.get("/account/confirm")
@guards.login_required
def confirm() -> Page:
    """Ask for the password again (or a passkey), then go back to ``next``."""
    return confirm_page(None)


@bp.post("/account/confirm")
@guards.login_required
def enter_sudo() -> Page:
    """Check the password; for a few minutes, this session may change its second factors."""
    record, user = guards.signed_in()
    password, wanted = fields("password", "next")
    try:
        wiring.accounts().sudo.enter(record, user, password, guards.client(), guards.now())
    except AccountError as exc:
        refused = refusal(exc)
        return confirm_page(wanted, refused.message), refused.status, refused.headers
    return redirect(next_page(wanted), 303)


@bp.get("/account/totp")
@guards.login_required
def totp() -> Page:
    """Show the enrolment of an authenticator app under way, or the button that starts one."""
    _, user = guards.signed_in()
    apps = wiring.authenticator_apps()
    if apps.enabled(user.id):
        return redirect(url_for("account.account"))
    return _enrolment_page(apps.pending(user), rd=safe_return_url(request.args.get("rd")))


@bp.post("/account/totp")
@guards.login_required
def start_totp() -> Page:
    """Make a new secret for an authenticator app, and show it (sudo mode)."""
    record, user = guards.signed_in()
    (rd,) = fields("rd")
    back = safe_return_url(rd)
    if not Sudo.active(record, guards.now()):
        return _confirm_first(url_for("factors.totp", rd=back))
    try:
        wiring.authenticator_apps().begin(user, guards.now())
    except AccountError:
        # Set up already, from another tab: the account page says so.
        return redirect(url_for("account.account"), 303)
    return redirect(url_for("factors.totp", rd=back), 303)


@bp.post("/account/totp/confirm")
@guards.login_required
def confirm_totp() -> Page:
    """Confirm the app with its first code, and show the recovery codes, this once."""
    record, user = guards.signed_in()
    code, rd = fields("code", "rd")
    back = safe_return_url(rd)
    apps = wiring.authenticator_apps()
    try:
        made = apps.confirm(user, record, code, guards.client(), guards.now())
    except AccountError as exc:
        refused = refusal(exc)
        page = _enrolment_page(apps.pending(user), refused.message, back)
        return page, refused.status, refused.headers
    return render_template("recovery_codes.html", codes=made, enrolled=True, rd=back)


@bp.post("/account/totp/delete")
@guards.login_required
def remove_totp() -> Page:
    """Remove the authenticator app and the recovery codes (sudo mode)."""
    record, user = guards.signed_in()
    if not Sudo.active(record, guards.now()):
        return _confirm_first(url_for("account.account"))
    wiring.authenticator_apps().remove(user, guards.client(), guards.now())
    return redirect(url_for("account.account", done="totp-removed"), 303)


@bp.post("/account/recovery-codes")
@guards.login_required
def make_recovery_codes() -> Page:
    """Replace the recovery codes with ten new ones, and show them this once (sudo mode)."""
    record, user = guards.signed_in()
    if not Sudo.active(record, guards.now()):
        return _confirm_first(url_for("account.account"))
    try:
        made = wiring.authenticator_apps().recovery.regenerate(user, guards.client(), guards.now())
    except AccountError:
        return redirect(url_for("account.account"), 303)
    return render_template("recovery_codes.html", codes=made, enrolled=False)


def _enrolment_page(
    enrolment: Enrolment | None, error: str | None = None, rd: str | None = None
) -> str:
    """Render the enrolment: the QR code, the secret and the code's form, or the start button."""
    picture = None
    if enrolment is not None:
        code = segno.make(enrolment.uri, error="m")
        # segno draws the modules as paths, with no style attribute or script: the strict
        # Content-Security-Policy lets it in, inline. Dark on light whatever the colour scheme,
        # as scanners expect.
        picture = Markup(  # noqa: S704 (segno's own SVG; the URI is drawn, never written out)
            code.svg_inline(scale=QR_SCALE, dark="#000", light="#fff", unit=None)
        )
    # Sent here by the policy at login, or back from /yup: the page says why.
    due = guards.enrolment_due(guards.signed_in()[0].second_factor)
    return render_template(
        "totp.html", enrolment=enrolment, picture=picture, error=error, rd=rd, due=due
    )


def _confirm_first(back_to: str) -> Response:
    """Send the browser to the password check, to come back to the page ``back_to`` after."""
    return redirect(url_for("factors.confirm", next=back_to), 303)


def confirm_page(wanted: str | None, error: str | None = None) -> str:
    """Render the password check (and the passkey's button, for a user with passkeys)."""
    _, user = guards.signed_in()
    passkeys = bool(wiring.passkeys().of_user(user.id))
    return render_template("confirm.html", next=next_page(wanted), error=error, passkeys=passkeys)


def next_page(wanted: str | None = None) -> str:
    """Return the page to go back to after the password check: a path of this site only."""
    given = request.args.get("next") if wanted is None else wanted
    return guards.safe_next_url(given, url_for("account.account"))
