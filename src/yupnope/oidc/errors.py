"""Name the ways the operator's changes to the provider's clients can be refused."""

from __future__ import annotations

from ..errors import AccountError


class InvalidClientSetting(AccountError):
    """Refuse a client's registration: a redirect URI, scope, group or algorithm it cannot have."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownClient(AccountError):
    """Refuse a change to a client that is not registered."""

    field = "client_id"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"There is no client {client_id!r}.")
        self.client_id = client_id


class PublicClient(AccountError):
    """Refuse to make a secret for a public client, which proves itself with PKCE instead."""

    field = "client_id"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"The client {client_id!r} is public: it has no secret to rotate.")


class UnknownGrant(AccountError):
    """Refuse to revoke a grant that is not there (ended, or never made)."""

    field = "grant"

    def __init__(self, grant: str) -> None:
        super().__init__(f"There is no live grant {grant!r}.")
