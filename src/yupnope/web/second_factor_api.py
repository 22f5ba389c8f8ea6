"""Serve the JSON API's second factors: a login's second step, authenticator apps, recovery codes.

And the password asked again for sudo mode (sudo.py).

The same rules as the account pages (second_factors/, sudo.py), answered in JSON; a refusal
comes from web/refusals.py's one table, as problem+json.
"""

from __future__ import annotations

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from .. import wiring
from ..errors import AccountError, ReauthenticationRequired
from ..metrics import SECOND_FACTOR
from ..models import SessionKind
from ..second_factors.recovery import FEW_LEFT
from ..sudo import WINDOW, Sudo
from . import bodies, guards
from .answers import Refusal
from .api_answers import (
    AUTH,
    BEARER,
    BODY,
    NONE,
    THROTTLED,
    UNSAFE,
    json_answer,
    no_content,
    session_created,
)
from .bearer import Caller, caller
from .factor_schemas import (
    PasswordCheck,
    RecoveryCodes,
    SecondFactors,
    SecondStep,
    TotpCode,
    TotpEnrolment,
)
from .metrics import counted_login
from .problems import documented
from .refusals import refusal
from .schemas import SessionCreated

_FACTORS = Tag(
    name="second factors",
    description="An authenticator app and recovery codes, asked for after the password.",
)

bp = APIBlueprint("second_factor_api", __name__, url_prefix="/api/v1")

bp.before_request(bodies.require_json_object)

#: The answer of an operation that sudo mode guards, when the password was not asked lately.
_SUDO = documented(403)


def require_sudo(found: Caller) -> None:
    """Refuse (403) unless the caller's session proved its owner lately: see sudo.py.

    A personal token never qualifies: it is not a login.
    """
    if found.token is not None or not Sudo.active(found.session, guards.now()):
        raise refusal(ReauthenticationRequired(WINDOW))


@bp.post(
    "/sessions/second-factor",
    tags=[_FACTORS],
    operation_id="completeSession",
    responses={201: SessionCreated, **AUTH, **THROTTLED, **BODY},
)
def complete_session(body: SecondStep) -> Response:
    """Complete a login whose password was right with a code: the session, as a login's.

    The code is one from the authenticator app (each taken once) or a recovery code (each
    good once). A wrong or used code is 401 bad_credentials, and counts on the account's
    budget for codes; a challenge unknown or older than five minutes is 401 challenge_expired.
    """
    try:
        done = counted_login(
            SECOND_FACTOR,
            lambda: wiring.second_step().complete(
                body.challenge,
                body.code,
                guards.client(),
                guards.now(),
                kind=SessionKind.API,
                device_cookie=body.device,
            ),
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return session_created(done.user, done.session, done.device)


@bp.post(
    "/me/sudo",
    tags=[_FACTORS],
    operation_id="confirmPassword",
    security=BEARER,
    responses={204: None, **AUTH, **THROTTLED, **BODY},
)
def enter_sudo(body: PasswordCheck) -> Response:
    """Check the password again, for sudo mode: see POST /api/v1/me/totp.

    For ten minutes after, this session may change its second factors and make personal tokens.
    """
    found = caller()
    if found.session is None:
        raise refusal(ReauthenticationRequired(WINDOW))
    try:
        wiring.accounts().sudo.enter(
            found.session, found.user, body.password, guards.client(), guards.now()
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return no_content()


@bp.get(
    "/me/second-factors",
    tags=[_FACTORS],
    operation_id="getSecondFactors",
    security=BEARER,
    responses={200: SecondFactors, **AUTH, **NONE},
)
def get_second_factors() -> Response:
    """Say whether an authenticator app is set up, and how many recovery codes are left."""
    user = caller().user
    apps = wiring.authenticator_apps()
    left = apps.recovery.left(user.id)
    described = SecondFactors(
        totp=apps.enabled(user.id), recovery_codes_left=left, recovery_codes_low=left <= FEW_LEFT
    )
    return json_answer(described)


@bp.post(
    "/me/totp",
    tags=[_FACTORS],
    operation_id="startTotp",
    security=BEARER,
    responses={201: TotpEnrolment, **AUTH, **_SUDO, **documented(409), **BODY},
)
def start_totp() -> Response:
    """Start setting up an authenticator app: its secret, to confirm with its first code.

    Needs sudo mode; 409 while an app is set up already (remove it first).
    """
    found = caller()
    require_sudo(found)
    try:
        made = wiring.authenticator_apps().begin(found.user, guards.now())
    except AccountError as exc:
        raise refusal(exc) from None
    return json_answer(TotpEnrolment(secret=made.secret, uri=made.uri), 201)


@bp.post(
    "/me/totp/confirm",
    tags=[_FACTORS],
    operation_id="confirmTotp",
    security=BEARER,
    responses={200: RecoveryCodes, **AUTH, **THROTTLED, **BODY},
)
def confirm_totp(body: TotpCode) -> Response:
    """Confirm the app with its first code; from now on every login asks for a code.

    The answer holds ten recovery codes, shown this once. A wrong code is 422 wrong_code.
    """
    found = caller()
    try:
        made = wiring.authenticator_apps().confirm(
            found.user, found.session, body.code, guards.client(), guards.now()
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return json_answer(RecoveryCodes(recovery_codes=made))


@bp.delete(
    "/me/totp",
    tags=[_FACTORS],
    operation_id="removeTotp",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE, **documented(404)},
)
def remove_totp() -> Response:
    """Remove the authenticator app and the recovery codes. Needs sudo mode."""
    found = caller()
    require_sudo(found)
    if not wiring.authenticator_apps().remove(found.user, guards.client(), guards.now()):
        raise Refusal(404, "not_found", "You have no authenticator app set up.")
    return no_content()


@bp.post(
    "/me/recovery-codes",
    tags=[_FACTORS],
    operation_id="makeRecoveryCodes",
    security=BEARER,
    responses={201: RecoveryCodes, **AUTH, **_SUDO, **documented(409), **BODY},
)
def make_recovery_codes() -> Response:
    """Replace the recovery codes with ten new ones, shown this once. Needs sudo mode."""
    found = caller()
    require_sudo(found)
    try:
        made = wiring.authenticator_apps().recovery.regenerate(
            found.user, guards.client(), guards.now()
        )
    except AccountError as exc:
        raise refusal(exc) from None
    return json_answer(RecoveryCodes(recovery_codes=made), 201)
