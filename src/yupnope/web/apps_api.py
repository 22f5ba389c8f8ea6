"""Serve the JSON API's apps: those the caller signed in to with OpenID Connect, and signing out.

The same rules as the account page (oidc/connections.py): signing out of an app ends its
tokens at once and forgets the caller's consent to it, so its next sign-in asks again.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from .. import wiring
from ..oidc.connections import Connection
from . import bodies, guards
from .answers import Refusal
from .api_answers import AUTH, BEARER, NONE, UNSAFE, json_answer, no_content
from .bearer import caller
from .problems import documented

_APPS = Tag(
    name="apps",
    description="The apps you signed in to with OpenID Connect: see them, sign out of one.",
)

bp = APIBlueprint("apps_api", __name__, url_prefix="/api/v1")

bp.before_request(bodies.require_json_object)


class AppPath(BaseModel):
    """Name one of the caller's sign-ins to an app: its grant."""

    grant: str = Field(min_length=1, max_length=64)


class AppOut(BaseModel):
    """Describe one app the caller is signed in to."""

    grant: str = Field(description="The sign-in's id, for signing out of it.")
    client_id: str
    name: str = Field(description="The app's name, as the operator registered it.")
    scope: str = Field(description="What the app was given, space-separated.")
    renewed_at: datetime = Field(description="When its newest token was handed out.")
    offline: bool = Field(description="Whether it holds a refresh token, and so stays signed in.")

    @classmethod
    def of(cls, connection: Connection) -> AppOut:
        """Describe ``connection``."""
        return cls(
            grant=connection.grant,
            client_id=connection.client_id,
            name=connection.client_name,
            scope=connection.scope,
            renewed_at=connection.renewed_at,
            offline=connection.offline,
        )


class AppList(BaseModel):
    """List the apps the caller is signed in to, the longest unrenewed first."""

    apps: list[AppOut]


@bp.get(
    "/me/apps",
    tags=[_APPS],
    operation_id="listApps",
    security=BEARER,
    responses={200: AppList, **AUTH, **NONE},
)
def list_apps() -> Response:
    """List the apps the account is signed in to with OpenID Connect."""
    connections = wiring.connections().alive(caller().user.id)
    return json_answer(AppList(apps=[AppOut.of(connection) for connection in connections]))


@bp.delete(
    "/me/apps/<grant>",
    tags=[_APPS],
    operation_id="signOutOfApp",
    security=BEARER,
    responses={204: None, **AUTH, **UNSAFE, **documented(404)},
)
def sign_out_of_app(path: AppPath) -> Response:
    """Sign out of one app: its tokens end at once, and its next sign-in asks for consent."""
    found = caller()
    if not wiring.connections().sign_out(found.user, path.grant, guards.client(), guards.now()):
        raise Refusal(404, "not_found", "You are signed in to no app with that grant.")
    return no_content()
