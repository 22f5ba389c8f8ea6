"""Serve the pages an app sends a person to: sign in to the app, consent, and log out.

The authorization request is checked by authlib first; an error it may send back (its client
and redirect URI known) goes back to the app, any other is shown here and never redirected
(RFC 6749 4.1.2.1). Then oidc/consents.py says what the request waits for: the login page
(which comes back here), the consent page, a refusal, or nothing, and the code goes to the app.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response

from .. import wiring
from ..oidc import consents
from ..oidc.claims import Authentication, EndUser, subject_of
from ..oidc.clients import RegisteredClient
from ..oidc.consents import Needed
from . import guards, headers
from .oidc import WebProvider, provider

bp = Blueprint("oidc_pages", __name__)

#: What the consent page says each scope gives the app.
SCOPE_WORDS = {
    "openid": "who you are: an identifier for your account, the same every time",
    "profile": "your name",
    "email": "your email address",
    "groups": "the groups you are in",
    "offline_access": "to stay signed in when you are away",
}

Page = Response | tuple[str, int] | str


@bp.route("/oidc/authorize", methods=["GET", "POST"])
def authorize() -> Page:
    """Sign the person in to an app: check the request, then log in, consent, or go back."""
    serving = provider()
    found = guards.current()
    end_user = None
    if found is not None:
        session, user = found
        end_user = serving.end_user(user.id, Authentication.of(session))
    try:
        grant = serving.get_consent_grant(end_user=end_user)
    except OAuth2Error as error:
        if error.redirect_uri:
            answer: Response = serving.handle_error_response(None, error)
            return answer
        return _refused(error.description or error.error, 400)
    client: RegisteredClient = grant.request.client
    ask = consents.Request.of(
        request.values.get("prompt"), request.values.get("max_age"), grant.request.scope
    )
    need = consents.needed(
        serving.store,
        client,
        ask,
        end_user.user.id if end_user else None,
        end_user.user.groups if end_user else (),
        end_user.authentication if end_user else None,
        serving.now,
    )
    silent = "none" in ask.prompt
    redirect_uri = grant.redirect_uri
    if need is Needed.LOGIN:
        if silent:
            return _back(serving, LoginRequiredError(redirect_uri=redirect_uri))
        return _to_login()
    assert end_user is not None  # noqa: S101 (Needed.LOGIN when nobody is signed in)
    if found is not None and guards.enrolment_due(found[0].second_factor):
        # The server requires a second factor, and this login proved none: set one up first.
        if silent:
            return _back(serving, LoginRequiredError(redirect_uri=redirect_uri))
        return redirect(url_for("factors.totp"), 303)
    if need is Needed.REFUSED:
        if silent:
            return _back(serving, AccessDeniedError(redirect_uri=redirect_uri))
        return _refused(
            f"Your account is not among those allowed to use {client.name}. "
            "Ask whoever runs this server to add you to one of its groups.",
            403,
        )
    if need is Needed.CONSENT and request.method == "GET":
        if silent:
            return _back(serving, ConsentRequiredError(redirect_uri=redirect_uri))
        return _consent_page(client, end_user, grant.request.scope, redirect_uri)
    if need is Needed.CONSENT and request.form.get("decision") != "allow":
        return _back(serving, AccessDeniedError(redirect_uri=redirect_uri))
    if need is Needed.CONSENT:
        consents.remember(serving.store, client, end_user.user.id, grant.request.scope, serving.now)
    answer = serving.create_authorization_response(grant_user=end_user, grant=grant)
    return answer


def _back(serving: WebProvider, error: OAuth2Error) -> Response:
    """Send an error back to the app, with the request's state (RFC 6749 4.1.2.1)."""
    error.state = request.values.get("state")
    answer: Response = serving.handle_error_response(None, error)
    return answer


def _to_login() -> Response:
    """Send the person to the login page, which comes back to this request without ``login``.

    ``prompt=login`` is taken out of the way back, so the fresh login answers it rather than
    asking again; ``max_age`` stays, and the fresh login meets it.
    """
    kept = []
    for key, value in request.args.items(multi=True):
        if key == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
        if value:
            kept.append((key, value))
    back = url_for("oidc_pages.authorize") + "?" + urlencode(kept)
    hint = request.args.get("login_hint", "")
    return redirect(url_for("pages.login_form", next=back, login_hint=hint or None), 303)


def _consent_page(
    client: RegisteredClient, end_user: EndUser, scope: str, redirect_uri: str
) -> Response:
    words = [SCOPE_WORDS[s] for s in scope.split() if s in SCOPE_WORDS]
    page = render_template(
        "consent.html",
        client=client,
        username=end_user.user.username,
        scopes=words,
        action=_here(),
    )
    return _form_goes_to(Response(page, mimetype="text/html"), redirect_uri)


def _here() -> str:
    """Return this request's path and query: where its page's form posts back to."""
    return request.full_path if request.query_string else request.path


def _form_goes_to(response: Response, uri: str | None) -> Response:
    """Let the page's form be redirected on to ``uri``'s origin (or scheme, for a native app).

    Chromium holds every redirect of a form's submission to the policy's form-action
    (web/headers.py), and the answer to this form is a redirect to the app.
    """
    if uri:
        parts = urlsplit(uri)
        source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
        settings = wiring.get().settings
        policy = headers.content_security_policy(settings.cookie_domain, (source,))
        response.headers["Content-Security-Policy"] = policy
    return response


def _refused(message: str, status: int) -> tuple[str, int]:
    title = "That app cannot sign you in"
    return render_template("error.html", title=title, message=message, status=status), status


@bp.route("/oidc/logout", methods=["GET", "POST"])
def end_session() -> Page:
    """Log out of yupnope for an app (RP-Initiated Logout 1.0), then go back to it.

    With the app's ID token of the person signed in here as a hint, at once; without one (or
    with another person's), only after the person confirms on this page, so another site cannot
    log them out unasked.
    """
    serving = provider()
    try:
        ask = serving.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return _refused(error.description or "That logout request is not valid.", 400)
    found = guards.current()
    hinted = ask.id_token_claims is not None and (
        found is None or ask.id_token_claims.get("sub") == subject_of(serving.store, found[1].id)
    )
    confirmed = request.method == "POST" and request.form.get("decision") == "logout"
    if not hinted and not confirmed:
        page = render_template(
            "logout.html", action=_here(), app=ask.client.name if ask.client else None
        )
        return _form_goes_to(Response(page, mimetype="text/html"), ask.redirect_uri)
    guards.sign_out()
    if ask.redirect_uri:
        return redirect(ask.redirect_uri, 302)
    return redirect(url_for("pages.login_form"), 303)
