"""Serve the HTML pages: the tutorial's /, /login, /yup and /nope, sign-up and the account."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from .. import db, wiring
from ..accounts import SecondStepNeeded
from ..errors import AccountChanged, AccountError, InvalidCredentials, SignupClosed, Throttled
from ..metrics import PASSWORD
from ..models import User
from ..sessions import Started
from . import guards
from .admission import hashes
from .metrics import counted_login
from .refusals import refusal
from .returns import safe_return_url

bp = Blueprint("pages", __name__)

Page = str | tuple[str, int] | tuple[str, int, dict[str, str]] | Response

_NOT_UTF8 = "The form was not sent as UTF-8 text."


def fields(*names: str) -> list[str]:
    """Return the named form fields ("" when absent), refusing a body that is not UTF-8 (400).

    Every field a view needs is read in one call, before anything happens, so a bad body cannot
    fail half-way through a view.
    """
    # The raw bytes are checked first: once request.form has read the stream, they are gone.
    if not _body_is_utf8():
        abort(400, _NOT_UTF8)
    values = [request.form.get(name, "") for name in names]
    # Werkzeug decodes a multipart field's bad bytes into U+FFFD.
    if any("\ufffd" in value for value in values):
        abort(400, _NOT_UTF8)
    return values


def _body_is_utf8() -> bool:
    """Return whether a urlencoded body decodes as UTF-8 (any other body is judged per field).

    Werkzeug keeps a percent-encoded byte that is not UTF-8 as the literal text "%FF" and drops a
    body with raw non-ASCII bytes as if it were empty, so the check has to read the bytes.
    """
    if request.mimetype != "application/x-www-form-urlencoded":
        return True
    try:
        # get_data caches the body, so request.form parses the same bytes afterwards.
        text = request.get_data(cache=True).decode("ascii")
        parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return False
    return True


# Decorators register bottom-up: "/" comes first, so url_for builds "/", the README's address.
@bp.get("/login")
@bp.get("/")
def login_form() -> Page:
    """Show the login form; ``rd`` is an app's page to return to, kept only when allowed.

    A visitor signed in without a second factor whom an app sent here (its rules ask for one,
    or the server requires one) is led to set one up, or asked to log in again with theirs.
    """
    rd = safe_return_url(request.args.get("rd"))
    found = guards.current() if guards.cookie_token() else None
    error = None
    lacking = found is not None and found[0].second_factor is None
    if found is not None and lacking and (rd or guards.enrolment_due(None)):
        if not wiring.authenticator_apps().enabled(found[1].id):
            return redirect(url_for("factors.totp", rd=rd))
        if rd:
            error = "That page asks for your second factor: log in again to give it."
    return render_template(
        "login.html",
        next=request.args.get("next", ""),
        rd=rd,
        # An app's login_hint (OpenID Connect Core 3.1.2.1): the name typed in for the person.
        hint=request.args.get("login_hint", "")[:64],
        done=request.args.get("done"),
        email=wiring.get().settings.email != "off",
        error=error,
    )


@bp.post("/login")
@hashes
def login() -> Response:
    """Log in and go to /yup (or back to ``rd`` or ``next``), or to /nope whatever went wrong.

    A failure keeps an allowed ``rd`` on the way back to the form, so a visitor sent here by an
    app's proxy still returns to that app once the password is right.
    """
    username, password, wanted, rd = fields("username", "password", "next", "rd")
    back = safe_return_url(rd)
    nope = url_for("pages.nope", rd=back) if back else url_for("pages.nope")
    if not username or not password:
        return redirect(nope, 303)
    try:
        result = counted_login(
            PASSWORD,
            lambda: wiring.accounts().log_in(
                username,
                password,
                guards.client(),
                guards.now(),
                replacing=guards.cookie_token(),
                device_cookie=guards.device_cookie(),
            ),
        )
    except InvalidCredentials:
        return redirect(nope, 303)
    except Throttled as exc:
        response = redirect(url_for("pages.nope", wait=exc.retry_after, rd=back), 303)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(result, SecondStepNeeded):
        guards.hold_challenge(result.challenge.token, result.challenge.expires_at)
        return redirect(url_for("second_step.form", next=wanted or None, rd=back), 303)
    return signed_in_page(result.user, result.session, result.device, wanted, back)


def signed_in_page(
    user: User, started: Started, device: str, wanted: str, back: str | None
) -> Response:
    """Give the browser its new session, and send it where its login was going.

    That is an app's page (``back``, an allowed ``rd``), a page of this site (``wanted``, the
    ``next``) or /yup; the account page first when the password must change, and the
    authenticator app's enrolment when this server requires one and the user has none.
    """
    guards.sign_in(started)
    guards.remember_device(device)
    target = back or guards.safe_next_url(wanted, url_for("pages.yup"))
    if user.must_change_password:
        target = url_for("account.account")
    elif guards.enrolment_due(started.record.second_factor):
        target = url_for("factors.totp")
    return redirect(target, 303)


@bp.get("/yup")
def yup() -> Page:
    """Greet the logged-in user, or send an anonymous visitor to the form."""
    user = guards.current_user()
    if user is None:
        return redirect(url_for("pages.login_form"))
    if user.must_change_password:
        return redirect(url_for("account.account"))
    if guards.enrolment_due(guards.signed_in()[0].second_factor):
        return redirect(url_for("factors.totp"))
    return render_template("yup.html", user=user)


@bp.get("/nope")
def nope() -> Page:
    """Show the failure picture and the way back, and how long to wait after too many tries."""
    wait = request.args.get("wait", type=int)
    message = str(Throttled(wait)) if wait is not None and 0 < wait < 10**8 else None
    back = safe_return_url(request.args.get("rd"))
    return render_template("nope.html", throttled=message, rd=back), 200


@bp.get("/logout")
def logout_form() -> Page:
    """Ask before logging out, and keep an allowed ``rd`` to go back to after.

    An app links here; only a post of this page's own form ends the session, so another site
    cannot log a person out unasked.
    """
    return render_template("logout.html", rd=safe_return_url(request.args.get("rd")))


@bp.post("/logout")
def logout() -> Response:
    """End this session on the server and go back to the form, or to an allowed ``rd``."""
    (back,) = fields("rd")
    guards.sign_out()
    return redirect(safe_return_url(back) or url_for("pages.login_form"), 303)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Page:
    """Create an account and log in to it; a refusal re-renders the form with why."""
    accounts = wiring.accounts()
    if not accounts.signup_open:
        closed = refusal(SignupClosed())
        return render_template("signup.html", error=closed.message, closed=True), closed.status
    # HEAD comes here too: it must show the form, not try an empty sign-up.
    if request.method != "POST":
        return render_template("signup.html", mode=wiring.get().settings.email)
    username, password, typed = fields("username", "password", "email")
    client, now = guards.client(), guards.now()
    mode = wiring.get().settings.email
    try:
        # The address is checked first, so a refused one leaves no account behind.
        addresses = wiring.addresses()
        address = addresses.free(typed) if typed.strip() or mode == "required" else None
        user = accounts.sign_up(username, password, client, now)
        if address is not None:
            addresses.ask(user, address, now)
    except AccountError as exc:
        refused = refusal(exc)
        page = render_template(
            "signup.html",
            error=refused.message,
            field=refused.field,
            username=username,
            email=typed,
            mode=mode,
        )
        return page, refused.status, refused.headers
    try:
        started = wiring.sessions().start(user, client, now, replacing=guards.cookie_token())
    except AccountChanged:
        return log_in_again()
    guards.sign_in(started)
    return redirect(url_for("pages.yup"), 303)


def log_in_again() -> Response:
    """Send the browser to the login form: an operator's change ended its session meanwhile."""
    guards.forget_cookie()
    return redirect(url_for("pages.login_form"), 303)


#: The health answers' type: a monitor reads one word.
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/healthz")
@bp.get("/healthz/ready")
def healthz() -> tuple[str, int, dict[str, str]]:
    """Answer 200 when the database answers, 503 when it does not: ready for requests."""
    if db.ping(wiring.orm_session()):
        return "ok\n", 200, _TEXT
    return "database unavailable\n", 503, _TEXT


@bp.get("/healthz/live")
def live() -> tuple[str, int, dict[str, str]]:
    """Answer 200 while this process serves requests, whatever the database does.

    A container runtime restarts a process whose liveness fails: a database outage must not
    make it restart every worker, which would not bring the database back.
    """
    return "ok\n", 200, _TEXT
