"""Serve the passkey's part of logging in: without a password, as the second step, for sudo.

Each ceremony is two calls by static/passkeys.js: POST .../options answers the options (JSON),
then the browser's answer is posted with a plain form, whose answer is a page or a redirect as
for a password. A login without a password is bound to this browser by a short-lived cookie
sent to /login/passkey alone; the second step's ceremony to its half-done login's cookie.
"""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from werkzeug.wrappers.response import Response

from .. import wiring
from ..errors import AccountError, ChallengeGone, Throttled
from ..metrics import PASSKEY
from ..second_factors.assertions import Answer
from ..security import tokens
from . import guards
from .factors import confirm_page, resume
from .metrics import counted_login
from .pages import Page, fields, signed_in_page
from .passkeys import options_answer, relying_party, script_refusal
from .refusals import refusal
from .returns import safe_return_url
from .second_step import complete

bp = Blueprint("passkey_login", __name__)


@bp.post("/login/passkey/options")
def login_options() -> Response:
    """Answer the options of a login without a password, bound to this browser."""
    token = guards.passkey_cookie() or tokens.new_token()
    try:
        made = wiring.passkey_logins().login_options(
            relying_party(), token, guards.client(), guards.now()
        )
    except Throttled as exc:
        refused = script_refusal(str(exc), 429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    guards.hold_passkey(token)
    return options_answer(made)


@bp.post("/login/passkey")
def log_in() -> Page:
    """Log in with the passkey's answer, and go where the login was going; else say why."""
    credential, wanted, rd = fields("credential", "next", "rd")
    back = safe_return_url(rd)
    try:
        done = counted_login(
            PASSKEY,
            lambda: wiring.passkey_logins().log_in(
                Answer(relying_party(), credential),
                guards.passkey_cookie(),
                guards.client(),
                guards.now(),
                replacing=guards.cookie_token(),
                device_cookie=guards.device_cookie(),
            ),
        )
    except AccountError as exc:
        refused = refusal(exc)
        page = render_template("login.html", error=refused.message, next=wanted, rd=back)
        return page, refused.status, refused.headers
    guards.drop_passkey()
    return signed_in_page(done.user, done.session, done.device, wanted, back)


@bp.post("/login/second-factor/passkey/options")
def second_step_options() -> Response:
    """Answer the options that ask the account's passkeys for a login's second step."""
    try:
        made = wiring.second_step().passkey_options(
            relying_party(), guards.challenge_cookie(), guards.now()
        )
    except ChallengeGone as exc:
        return script_refusal(str(exc), 401, restart=url_for("pages.login_form"))
    return options_answer(made)


@bp.post("/login/second-factor/passkey")
def second_step() -> Page:
    """Complete the second step with the passkey's answer; else ask again."""
    credential, wanted, rd = fields("credential", "next", "rd")
    wrong = "That passkey was not accepted. Try again, or use a code."
    return complete(Answer(relying_party(), credential), wanted, rd, wrong)


@bp.post("/account/confirm/passkey/options")
@guards.login_required
def confirm_options() -> Response:
    """Answer the options that ask one of the owner's passkeys to confirm this session."""
    record, user = guards.signed_in()
    made = wiring.passkey_logins().sudo_options(relying_party(), record, user, guards.now())
    return options_answer(made)


@bp.post("/account/confirm/passkey")
@guards.login_required
def confirm() -> Page:
    """Put this session in sudo mode with the passkey's answer, then go on as the password's."""
    record, user = guards.signed_in()
    credential, wanted, then = fields("credential", "next", "then")
    try:
        wiring.passkey_logins().enter_sudo(
            Answer(relying_party(), credential), record, user, guards.client(), guards.now()
        )
    except AccountError as exc:
        refused = refusal(exc)
        return confirm_page(wanted, refused.message, then), refused.status, refused.headers
    return resume(wanted, then)
