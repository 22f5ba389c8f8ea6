"""Declare the JSON API's bodies for second factors and sudo mode."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from .schemas import DEVICE_CAP, Password, RequestBody

#: Longest code the API reads at all: a recovery code with its dashes and some spaces.
_CODE_CAP = 64

Code = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_CODE_CAP,
        description="Six digits from the authenticator app, or a recovery code.",
    ),
]


class SecondStep(RequestBody):
    """Carry a half-done login's challenge and the code that completes it."""

    challenge: str = Field(
        min_length=1,
        max_length=128,
        description="The `challenge` of the 401 that POST /api/v1/sessions answered.",
    )
    code: Code
    device: str | None = Field(
        default=None,
        max_length=DEVICE_CAP,
        description="The `device` of an earlier login's answer for this account, as for "
        "POST /api/v1/sessions: the code is then counted on that device's own budget.",
    )


class TotpCode(RequestBody):
    """Carry the authenticator app's first code, which confirms its enrolment."""

    code: Code


class PasswordCheck(RequestBody):
    """Carry the account's password, asked again before a change that sudo mode guards."""

    password: Password


class TotpEnrolment(BaseModel):
    """Carry a new authenticator app's secret, as text and as the URI a QR code holds."""

    secret: str = Field(description="The base32 secret, for an app that takes it typed.")
    uri: str = Field(description="The `otpauth://` URI, for an app that reads a QR code.")


class RecoveryCodes(BaseModel):
    """Carry new recovery codes, shown this once: each completes one login's second step."""

    recovery_codes: list[str]


class SecondFactors(BaseModel):
    """Describe the account's second factors."""

    totp: bool = Field(description="Whether an authenticator app is set up and confirmed.")
    recovery_codes_left: int = Field(description="Unused recovery codes.")
    recovery_codes_low: bool = Field(
        description="Whether so few are left that new ones should be made."
    )
