"""Serve the account's second factors: set up or remove the authenticator app, recovery codes.

And the page that asks for the password again before any of these changes (sudo mode, sudo.py):
a change asked for outside that window goes there first, and is made once the check passes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import segno
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
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

#: The changes a password check may make at once after it passes, when it was asked for one of
#: them: none takes any input but ``rd``, which travels in its URL, so the check's own form,
#: posted on to them, carries all they need.
RESUMABLE = frozenset(
    {"factors.start_totp", "factors.remove_totp", "factors.make_recovery_codes", "passkeys.remove"}
)

#: Pixels per module of the QR code: 41 modules and the quiet zone make it about 250 px wide.
QR_SCALE = 5


@bp.get("/account/confirm")
@guards.login_required
def confirm() -> Page:
    """Ask for the password again (or a passkey); then make the change ``then``, or go back."""
    return confirm_page(None, then=request.args.get("then", ""))


@bp.post("/account/confirm")
@guards.login_required
def enter_sudo() -> Page:
    """Check the password; for a few minutes, this session may change its second factors."""
    record, user = guards.signed_in()
    password, wanted, then = fields("password", "next", "then")
    try:
        wiring.accounts().sudo.enter(record, user, password, guards.client(), guards.now())
    except AccountError as exc:
        refused = refusal(exc)
        return confirm_page(wanted, refused.message, then), refused.status, refused.headers
    return resume(wanted, then)


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
    # Resumed after a password check, rd comes in the URL (RESUMABLE).
    back = safe_return_url(rd or request.args.get("rd"))
    if not Sudo.active(record, guards.now()):
        return confirm_first(
            url_for("factors.totp", rd=back), url_for("factors.start_totp", rd=back)
        )
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
        return confirm_first(url_for("account.account"))
    wiring.authenticator_apps().remove(user, guards.client(), guards.now())
    return redirect(url_for("account.account", done="totp-removed"), 303)


@bp.post("/account/recovery-codes")
@guards.login_required
def make_recovery_codes() -> Page:
    """Replace the recovery codes with ten new ones, and show them this once (sudo mode)."""
    record, user = guards.signed_in()
    if not Sudo.active(record, guards.now()):
        return confirm_first(url_for("account.account"))
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


def confirm_first(back_to: str, change: str | None = None) -> Response:
    """Send the browser to the password check; after it, make the change this request asked
    for (``change``, else this request's own path), or come back to the page ``back_to``."""
    then = request.path if change is None else change
    return redirect(url_for("factors.confirm", next=back_to, then=then), 303)


def resume(wanted: str, then: str) -> Response:
    """Answer a password check that passed: make the change it was asked for, or go back.

    The change is made by posting the check's form on to it (307 keeps the method and the
    body), and only a change in RESUMABLE: any other path goes back as ``next`` would.
    """
    if _resumable(then):
        return redirect(then, 307)
    return redirect(next_page(wanted), 303)


def _resumable(then: str) -> bool:
    """Return whether ``then`` is a path of this site to one of the RESUMABLE changes."""
    if not then or guards.safe_next_url(then, "") != then:
        return False
    try:
        endpoint, _ = current_app.url_map.bind("").match(urlsplit(then).path, method="POST")
    except HTTPException:
        return False
    return endpoint in RESUMABLE


def confirm_page(wanted: str | None, error: str | None = None, then: str = "") -> str:
    """Render the password check (and the passkey's button, for a user with passkeys)."""
    _, user = guards.signed_in()
    passkeys = bool(wiring.passkeys().of_user(user.id))
    return render_template(
        "confirm.html",
        next=next_page(wanted),
        then=then if _resumable(then) else "",
        error=error,
        passkeys=passkeys,
    )


def next_page(wanted: str | None = None) -> str:
    """Return the page to go back to after the password check: a path of this site only."""
    given = request.args.get("next") if wanted is None else wanted
    return guards.safe_next_url(given, url_for("account.account"))
