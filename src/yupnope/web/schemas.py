"""Declare the JSON API's request and response bodies; the OpenAPI description is made from them.

Request models only check the shape (types, lengths, no unknown members); whether a name is
free or a password strong enough is for the account rules to say.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .. import personal_tokens, usernames
from ..models import Session
from ..security import passwords

#: Longest name or password the API reads at all: a cap on the shape, four bytes a character.
_NAME_CAP = 4 * usernames.MAX_LENGTH
_PASSWORD_CAP = 4 * passwords.MAX_LENGTH

#: Longest device value the API reads at all: a signed one (security/tokens.py) is about 120
#: characters, and anything longer is no device value but a wrong shape.
DEVICE_CAP = 512

#: Largest id a path may name: ids are 32-bit on PostgreSQL.
_MAX_ID = 2**31 - 1


def _whole_number(value: object) -> object:
    """Let a JSON number with no fraction (``3600.0``) stand for an integer, as JSON Schema does.

    Anything else goes on unchanged to the strict integer check, which refuses "3600" and true.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Name = Annotated[str, Field(min_length=1, max_length=_NAME_CAP)]
Password = Annotated[str, Field(min_length=1, max_length=_PASSWORD_CAP)]
#: A password to be chosen: the policy's shortest length is part of the shape.
NewPassword = Annotated[str, Field(min_length=passwords.MIN_LENGTH, max_length=_PASSWORD_CAP)]


class RequestBody(BaseModel):
    """Refuse unknown members and lax conversions ("5" for 5): a client's mistake is named."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Credentials(RequestBody):
    """Carry a name and password to log in with, and the device value of an earlier login."""

    username: Name
    password: Password
    device: str | None = Field(
        default=None,
        max_length=DEVICE_CAP,
        description=(
            "The `device` of an earlier login's answer for this account: the attempt is then "
            "counted on that device's own budget, so strangers' failures cannot refuse it. A "
            "value that is not valid for this account (another account's, expired, altered) "
            "counts as none."
        ),
    )


class NewUser(RequestBody):
    """Carry the name and password of an account to create."""

    username: Name
    password: NewPassword


class PasswordChange(RequestBody):
    """Carry the current password and the new one."""

    current_password: Password
    new_password: NewPassword


class NewToken(RequestBody):
    """Carry a personal token's name and how many seconds it lives."""

    name: str = Field(min_length=1, max_length=personal_tokens.MAX_NAME_LENGTH)
    expires_in: Annotated[int, BeforeValidator(_whole_number)] = Field(
        default=int(personal_tokens.DEFAULT_LIFETIME.total_seconds()),
        ge=int(personal_tokens.MIN_LIFETIME.total_seconds()),
        le=int(personal_tokens.MAX_LIFETIME.total_seconds()),
        description="Seconds from now until the token stops working.",
    )


class SessionPath(BaseModel):
    """Name one of the caller's sessions."""

    session_id: int = Field(ge=1, le=_MAX_ID)


class TokenPath(BaseModel):
    """Name one of the caller's personal tokens."""

    token_id: int = Field(ge=1, le=_MAX_ID)


class UserOut(BaseModel):
    """Describe an account to its owner."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    created_at: datetime
    last_login_at: datetime | None
    must_change_password: bool = Field(
        description="The password fails today's policy: change it before anything else."
    )


class MeOut(UserOut):
    """Describe the caller's own account, with the groups they are in."""

    groups: list[str] = Field(
        description=(
            "The names of the groups the operator put you in, sorted. A change to them counts "
            "from the next request on."
        )
    )


def _links(**links: dict[str, Any]) -> ConfigDict:
    """Return a model config whose OpenAPI response carries these links (flask-openapi3).

    Links tell a client, and a stateful fuzzer, which operation can follow this answer and
    with which of its values (OpenAPI 3.1, 4.8.20).
    """
    return ConfigDict(openapi_extra={"links": links})  # type: ignore[typeddict-unknown-key]


class CreatedUser(UserOut):
    """Describe a new account; its name and password can now log in."""

    model_config = _links(
        LogIn={
            "operationId": "createSession",
            "requestBody": {
                "username": "$request.body#/username",
                "password": "$request.body#/password",
            },
        }
    )


class SessionCreated(BaseModel):
    """Carry a new session's bearer token (shown this once), its end, and a device value."""

    model_config = _links(
        LogInAgain={
            "operationId": "createSession",
            "requestBody": {
                "username": "$request.body#/username",
                "password": "$request.body#/password",
                "device": "$response.body#/device",
            },
        }
    )

    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime = Field(
        description="When the session ends at the latest; it ends sooner when left unused."
    )
    user: UserOut
    device: str = Field(
        description=(
            "Keep it, and send it back as `device` with your later logins to this account: "
            "they are then counted on this client's own budget, so strangers' failures cannot "
            "lock you out. It identifies nothing but this client's past login to this account, "
            "and counts for `DEVICE_COOKIE_DAYS` (180 unless the operator set another)."
        )
    )


class SessionOut(BaseModel):
    """Describe one of the caller's sessions, a browser's or an API client's."""

    id: int
    kind: Literal["browser", "api"]
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    current: bool = Field(description="This is the session the request was made with.")

    @classmethod
    def of(cls, record: Session, current_id: int | None) -> SessionOut:
        """Return the description of ``record``, marked current when it is ``current_id``."""
        return cls(
            id=record.id,
            kind="api" if record.kind == "api" else "browser",
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            expires_at=record.expires_at,
            client_address=record.client_address,
            user_agent=record.user_agent,
            current=record.id == current_id,
        )


class SessionList(BaseModel):
    """List the caller's sessions, newest first."""

    model_config = _links(
        EndSession={
            "operationId": "endSession",
            "parameters": {"session_id": "$response.body#/sessions/0/id"},
        }
    )

    sessions: list[SessionOut]


class TokenOut(BaseModel):
    """Describe one personal token, without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    """Describe a new personal token with its secret, which is never shown again."""

    model_config = _links(
        RevokeToken={"operationId": "revokeToken", "parameters": {"token_id": "$response.body#/id"}}
    )

    secret: str = Field(description="Send as `Authorization: Bearer <secret>`; shown only once.")


class TokenList(BaseModel):
    """List the caller's personal tokens, newest first."""

    model_config = _links(
        RevokeToken={
            "operationId": "revokeToken",
            "parameters": {"token_id": "$response.body#/tokens/0/id"},
        }
    )

    tokens: list[TokenOut]
