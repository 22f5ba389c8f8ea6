"""Serve the JSON API under /api/v1: the same account rules as the pages, answered in JSON.

Each view reads a body validated by its model (web/schemas.py), calls the rules, and turns their
answer into a status code; a refusal by the rules is answered from the one table of
web/refusals.py, as problem+json. Each route declares its answers, from which web/openapi.py's
description is made.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from .. import wiring
from ..accounts import SecondStepNeeded
from ..errors import AccountError
from ..metrics import PASSWORD
from ..models import SessionKind
from . import bodies, guards
from .admission import hashes
from .answers import CHALLENGE, Refusal
from .api_answers import (
    AUTH,
    BEARER,
    BODY,
    CHALLENGED,
    NONE,
    THROTTLED,
    UNSAFE,
    json_answer,
    no_content,
    session_created,
)
from .bearer import caller
from .metrics import counted_login
from .problems import documented
from .refusals import refusal
from .schemas import (
    CreatedUser,
    Credentials,
    MeOut,
    NewToken,
    NewUser,
    PasswordChange,
    SessionCreated,
    SessionList,
    SessionOut,
    SessionPath,
    TokenCreated,
    TokenList,
    TokenOut,
    TokenPath,
)
from .second_factor_api import require_sudo

_SESSIONS = Tag(name="sessions", description="Log in and out; see and end your sessions.")
_ACCOUNT = Tag(name="account", description="Create an account; read and change your own.")
_TOKENS = Tag(name="tokens", description="Personal API tokens for scripts.")

bp = APIBlueprint("api", __name__, url_prefix="/api/v1")

bp.before_request(bodies.require_json_object)


@bp.post(
    "/sessions",
    tags=[_SESSIONS],
    operation_id="createSession",
    responses={
        201: SessionCreated,
        **documented(401, headers=CHALLENGED),
        **THROTTLED,
        **BODY,
    },
)
@hashes
def create_session(body: Credentials) -> Response:
    """Log in: trade a name and password for a bearer token and a device value.

    Every failure (unknown name, wrong password, disabled account) is the same 401. The device
    value, sent back with a later login, is the API client's device cookie (OWASP "Slow Down
    Online Guessing Attacks with Device Cookies"): strangers' failures cannot lock it out.
    """
    try:
        result = counted_login(
            PASSWORD,
            lambda: wiring.accounts().log_in(
                body.username,
                body.password,
                guards.client(),
                guards.now(),
                device_cookie=body.device,
                kind=SessionKind.API,
            ),
        )
    except AccountError as exc:
        raise refusal(exc) from None
    if isinstance(result, SecondStepNeeded):
        raise Refusal(
            401,
            "second_factor_required",
            "The password is right; now send a code from the authenticator app, or a recovery "
            "code, with this challenge to POST /api/v1/sessions/second-factor.",
            headers={"WWW-Authenticate": CHALLENGE},
            challenge=result.challenge.token,
        )
    return session_created(result.user, result.session, result.device)


@bp.delete(
    "/sessions/current",
    tags=[_SESSIONS],
    operation_id="endCurrentSession",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE},
)
def end_current_session() -> Response:
    """Log out: end the session or personal token this request was made with."""
    found = caller()
    client, now = guards.client(), guards.now()
    if found.token is not None:
        wiring.personal_tokens().revoke(found.user, found.token.id, client, now)
    elif "Authorization" in request.headers and found.session is not None:
        wiring.sessions().end(found.session, client, now)
    else:
        guards.sign_out()
    return no_content()


@bp.get(
    "/me",
    tags=[_ACCOUNT],
    operation_id="getMe",
    security=BEARER,
    responses={200: MeOut, **AUTH, **NONE},
)
def get_me() -> Response:
    """Describe the logged-in account and its groups."""
    return json_answer(MeOut.model_validate(caller().user))


@bp.post(
    "/users",
    tags=[_ACCOUNT],
    operation_id="createUser",
    responses={
        201: CreatedUser,
        **documented(409),
        **THROTTLED,
        **BODY,
    },
)
def create_user(body: NewUser) -> Response:
    """Sign up: create an account, when the operator has left sign-up open."""
    try:
        user = wiring.accounts().sign_up(
            body.username, body.password, guards.client(), guards.now()
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return json_answer(CreatedUser.model_validate(user), 201)


@bp.post(
    "/me/password",
    tags=[_ACCOUNT],
    operation_id="changePassword",
    security=BEARER,
    responses={204: None, **AUTH, **THROTTLED, **BODY},
)
def change_password(body: PasswordChange) -> Response:
    """Change the password, given the current one.

    Every other session and every personal token of the account ends; the session this
    request was made with stays (a personal token it was made with ends too).
    """
    found = caller()
    try:
        wiring.accounts().change_password(
            found.user,
            body.current_password,
            body.new_password,
            guards.client(),
            guards.now(),
            keep_session=found.session.id if found.session is not None else None,
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return no_content()


@bp.get(
    "/me/sessions",
    tags=[_SESSIONS],
    operation_id="listSessions",
    security=BEARER,
    responses={
        200: SessionList,
        **AUTH,
        **NONE,
    },
)
def list_sessions() -> Response:
    """List the account's sessions, browsers' and API clients' alike."""
    found = caller()
    current = found.session.id if found.session is not None else None
    records = wiring.sessions().of_user(found.user.id)
    return json_answer(SessionList(sessions=[SessionOut.of(record, current) for record in records]))


@bp.delete(
    "/me/sessions/<int:session_id>",
    tags=[_SESSIONS],
    operation_id="endSession",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE, **documented(404)},
)
def end_session(path: SessionPath) -> Response:
    """End one of the account's sessions, anywhere it was opened."""
    found = caller()
    if not wiring.sessions().end_one(found.user.id, path.session_id, guards.client(), guards.now()):
        raise Refusal(404, "not_found", "You have no session with that id.")
    return no_content()


@bp.post(
    "/me/tokens",
    tags=[_TOKENS],
    operation_id="createToken",
    security=BEARER,
    responses={
        201: TokenCreated,
        **AUTH,
        **documented(409),
        **BODY,
    },
)
def create_token(body: NewToken) -> Response:
    """Make a personal token for a script; its secret is in this answer and never again.

    Only a login session may make one, not another personal token, so a leaked token cannot
    mint longer-lived ones; and only in sudo mode (see POST /api/v1/me/sudo), so a stolen
    session cannot either.
    """
    found = caller()
    if found.token is None:
        require_sudo(found)
    try:
        issued = wiring.personal_tokens().issue(
            found.user,
            body.name,
            timedelta(seconds=body.expires_in),
            guards.client(),
            guards.now(),
            by_token=found.token is not None,
        )
    except AccountError as exc:
        raise refusal(exc) from None
    described = TokenOut.model_validate(issued.record).model_dump()
    return json_answer(TokenCreated(**described, secret=issued.secret), 201)


@bp.get(
    "/me/tokens",
    tags=[_TOKENS],
    operation_id="listTokens",
    security=BEARER,
    responses={
        200: TokenList,
        **AUTH,
        **NONE,
    },
)
def list_tokens() -> Response:
    """List the account's personal tokens."""
    records = wiring.personal_tokens().of_user(caller().user.id)
    return json_answer(TokenList(tokens=[TokenOut.model_validate(record) for record in records]))


@bp.delete(
    "/me/tokens/<int:token_id>",
    tags=[_TOKENS],
    operation_id="revokeToken",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE, **documented(404)},
)
def revoke_token(path: TokenPath) -> Response:
    """Revoke one of the account's personal tokens."""
    found = caller()
    if not wiring.personal_tokens().revoke(
        found.user, path.token_id, guards.client(), guards.now()
    ):
        raise Refusal(404, "not_found", "You have no token with that id.")
    return no_content()
