"""Log schemathesis in afresh for every request it sends to the API under test.

Fuzzed requests end sessions and revoke tokens (that is what half the API is for), so a token
fetched once would soon be dead and every later case would test only the 401.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis


@schemathesis.auth(refresh_interval=None)
class FreshLogin:
    """Log in as the fuzzing account and send its new token as the bearer token."""

    def get(self, case: Any, context: Any) -> str:
        answer = requests.post(
            os.environ["FUZZ_SERVER"] + "/api/v1/sessions",
            json={"username": os.environ["FUZZ_USERNAME"], "password": os.environ["FUZZ_PASSWORD"]},
            timeout=30,
        )
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
