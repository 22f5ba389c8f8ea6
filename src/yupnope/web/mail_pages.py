"""Serve the pages of mailed links: forgot password, reset it, confirm an address, "not me".

A link only shows a page; what it does needs that page's button (a POST), so a mail program
that opens links to scan them changes nothing. The pages exist only while accounts have email
addresses (``YUPNOPE_EMAIL`` not ``off``): otherwise they are 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from .. import wiring
from ..errors import AccountError, Throttled
from ..mail.errors import MailTokenInvalid
from . import guards
from .pages import Page, fields
from .refusals import refusal

bp = Blueprint("mail_pages", __name__)


@bp.before_request
def _only_with_email() -> None:
    if wiring.get().settings.email == "off":
        abort(404)


@bp.route("/forgot", methods=["GET", "POST"])
def forgot() -> Page:
    """Ask for the address of a forgotten password's account; mail it a reset link.

    The answer is the same whether or not the address is any account's (resets.py).
    """
    if request.method != "POST":
        return render_template("forgot.html")
    (typed,) = fields("email")
    try:
        wiring.resets().ask(typed, guards.client(), guards.now())
    except Throttled as exc:
        refused = refusal(exc)
        page = render_template("forgot.html", error=refused.message, email=typed)
        return page, refused.status, refused.headers
    return render_template("forgot.html", sent=typed.strip())


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> Page:
    """Show the form for a new password, and set it: every session and token ends."""
    resets = wiring.resets()
    try:
        user = resets.check(token, guards.now())
    except MailTokenInvalid as exc:
        return _dead_link(exc)
    if request.method != "POST":
        return render_template("reset.html", username=user.username)
    (new_password,) = fields("new_password")
    try:
        resets.complete(token, new_password, guards.client(), guards.now())
    except AccountError as exc:
        refused = refusal(exc)
        page = render_template(
            "reset.html", username=user.username, error=refused.message, field=refused.field
        )
        return page, refused.status, refused.headers
    guards.forget_cookie()
    return redirect(url_for("pages.login_form", done="reset"), 303)


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify(token: str) -> Page:
    """Show which address a link confirms for which account; confirm it with the button."""
    addresses = wiring.addresses()
    try:
        user, address = addresses.pending(token, guards.now())
        if request.method != "POST":
            return render_template("verify_email.html", username=user.username, address=address)
        addresses.verify(token, guards.client(), guards.now())
    except AccountError as exc:
        return _dead_link(exc)
    page = render_template("verify_email.html", username=user.username, address=address, done=True)
    return page


@bp.route("/not-me/<token>", methods=["GET", "POST"])
def not_me(token: str) -> Page:
    """Say what "this wasn't me" does; with the button, end everything and lock the password."""
    notices = wiring.notices()
    try:
        user = notices.check(token, guards.now())
    except MailTokenInvalid as exc:
        return _dead_link(exc)
    if request.method != "POST":
        return render_template("not_me.html", username=user.username)
    try:
        notices.not_me(token, guards.client(), guards.now())
    except MailTokenInvalid as exc:
        return _dead_link(exc)
    guards.forget_cookie()
    email = wiring.get().settings.email != "off"
    return render_template("not_me.html", username=user.username, done=True, email=email)


def _dead_link(exc: AccountError) -> tuple[str, int]:
    refused = refusal(exc)
    title = "That link no longer works"
    return render_template("error.html", title=title, message=refused.message, status=410), 410
