"""Serve a login's second step: the page that asks for the code after a right password.

The first step (web/pages.login) left a challenge in a cookie sent to this page alone; the
code typed here, from an authenticator app or a recovery code, turns it into a session (a
passkey's answer does at web/passkey_login.py).
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from .. import wiring
from ..errors import AccountError, ChallengeGone, Throttled
from ..metrics import SECOND_FACTOR
from ..second_factors.assertions import Answer
from . import guards
from .metrics import counted_login
from .pages import Page, fields, signed_in_page
from .refusals import refusal
from .returns import safe_return_url

bp = Blueprint("second_step", __name__)


@bp.get("/login/second-factor")
def form() -> Page:
    """Ask for the code of a login whose password was right, or go back to the login form."""
    if not guards.challenge_cookie():
        return redirect(url_for("pages.login_form"))
    return second_step_page()


@bp.post("/login/second-factor")
def submit() -> Page:
    """Check the code, then sign in and go where the login was going; else ask again."""
    code, wanted, rd = fields("code", "next", "rd")
    return complete(code, wanted, rd)


def complete(given: str | Answer, wanted: str, rd: str, wrong: str | None = None) -> Page:
    """Complete the half-done login with a code or a passkey's answer, and answer the browser.

    Signed in, it goes where the login was going; a refused answer shows the step again, with
    ``wrong`` in place of the refusal's message when given (never a wait's); a login gone or
    expired starts again at the form.
    """
    try:
        done = counted_login(
            SECOND_FACTOR,
            lambda: wiring.second_step().complete(
                guards.challenge_cookie(),
                given,
                guards.client(),
                guards.now(),
                replacing=guards.cookie_token(),
                device_cookie=guards.device_cookie(),
            ),
        )
    except ChallengeGone as exc:
        guards.drop_challenge()
        page = render_template("login.html", error=refusal(exc).message, rd=safe_return_url(rd))
        return page, 200
    except AccountError as exc:
        refused = refusal(exc)
        if wrong is not None and not isinstance(exc, Throttled):
            refused.message = wrong
        return second_step_page(refused.message), refused.status, refused.headers
    guards.drop_challenge()
    return signed_in_page(done.user, done.session, done.device, wanted, safe_return_url(rd))


def second_step_page(error: str | None = None) -> str:
    """Render the second step's form, with ``error`` shown on its input.

    The code's form for an account with an authenticator app (or, with passkeys alone, for
    its recovery codes), the passkey's button for one with passkeys; both when it has both.
    """
    try:
        offered = wiring.second_step().offered(guards.challenge_cookie(), guards.now())
    except ChallengeGone:
        offered = None
    return render_template(
        "second_factor.html",
        error=error,
        totp=offered is None or offered.totp,
        passkeys=offered is not None and offered.passkeys,
        codes=offered is not None and offered.recovery_codes,
        next=request.values.get("next", ""),
        rd=safe_return_url(request.values.get("rd")),
    )
