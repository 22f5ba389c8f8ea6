"""Serve the account's passkeys: add one (the script's two calls), rename and remove them.

Adding takes static/passkeys.js: it asks POST /account/passkeys/options for the options,
has the browser make the passkey, and posts the answer with the form. Renaming and removing
are plain forms. The relying party is the public URL's, or the request's own origin without
one (second_factors/ceremonies.py).
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, redirect, request, url_for
from werkzeug.wrappers.response import Response

from .. import wiring
from ..errors import AccountChanged, AccountError
from ..second_factors.ceremonies import RelyingParty
from ..sudo import Sudo
from . import guards
from .account import refused_account_page
from .factors import confirm_first
from .pages import Page, fields, log_in_again
from .refusals import refusal

bp = Blueprint("passkeys", __name__)


def relying_party() -> RelyingParty:
    """Return the relying party: the public URL's, else this request's own origin."""
    return RelyingParty.of(wiring.get().settings.public_origin, request.host_url)


def options_answer(options: str) -> Response:
    """Return a ceremony's options, as py_webauthn wrote them (JSON), for the script."""
    return current_app.response_class(options, mimetype="application/json")


def script_refusal(message: str, status: int, **extra: str) -> Response:
    """Return a refusal the script shows beside its button: ``{"error": message, ...}``."""
    body = json.dumps({"error": message, **extra})
    return current_app.response_class(body, status=status, mimetype="application/json")


@bp.post("/account/passkeys/options")
@guards.login_required
def options() -> Response:
    """Answer the options that make a new passkey (sudo mode, or where to confirm first)."""
    record, user = guards.signed_in()
    if not Sudo.active(record, guards.now()):
        confirm = url_for("factors.confirm", next=url_for("account.account", _anchor="passkeys"))
        return script_refusal("Confirm it is you first.", 403, confirm=confirm)
    made = wiring.passkeys().registration_options(relying_party(), user, record, guards.now())
    return options_answer(made)


@bp.post("/account/passkeys")
@guards.login_required
def add() -> Page:
    """Keep the passkey the browser made, under the name given (sudo mode)."""
    record, user = guards.signed_in()
    name, credential = fields("name", "credential")
    if not Sudo.active(record, guards.now()):
        # Not made after the check: the browser's passkey is made again, for a new challenge.
        return confirm_first(url_for("account.account", _anchor="passkeys"), change="")
    try:
        wiring.passkeys().register(
            relying_party(), user, record, name, credential, guards.client(), guards.now()
        )
    except AccountChanged:
        return log_in_again()
    except AccountError as exc:
        return refused_account_page(refusal(exc), "passkey_name", {"name": "passkey_name"})
    return redirect(url_for("account.account", done="passkey-added", _anchor="passkeys"), 303)


@bp.post("/account/passkeys/<int:passkey_id>/rename")
@guards.login_required
def rename(passkey_id: int) -> Page:
    """Rename one of the account's passkeys."""
    _, user = guards.signed_in()
    (name,) = fields("name")
    try:
        found = wiring.passkeys().rename(user, passkey_id, name)
    except AccountError as exc:
        field = f"passkey-{passkey_id}-name"
        return refused_account_page(refusal(exc), field, {"name": field})
    done = "passkey-renamed" if found else None
    return redirect(url_for("account.account", done=done, _anchor="passkeys"), 303)


@bp.post("/account/passkeys/<int:passkey_id>/delete")
@guards.login_required
def remove(passkey_id: int) -> Page:
    """Remove one of the account's passkeys (sudo mode)."""
    record, user = guards.signed_in()
    if not Sudo.active(record, guards.now()):
        return confirm_first(url_for("account.account", _anchor="passkeys"))
    found = wiring.passkeys().remove(user, passkey_id, guards.client(), guards.now())
    done = "passkey-removed" if found else None
    return redirect(url_for("account.account", done=done, _anchor="passkeys"), 303)
