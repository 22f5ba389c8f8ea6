"""Describe who is on the other end of a request, as far as the account rules need to know."""

from __future__ import annotations

from dataclasses import dataclass

_MAX_ADDRESS = 64
_MAX_AGENT = 256


@dataclass(frozen=True)
class Client:
    """Carry the client's address and user agent, cut to what the event log keeps."""

    address: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, address: str | None, user_agent: str | None) -> Client:
        """Return a Client with both values cut to their stored lengths."""
        return cls(
            address[:_MAX_ADDRESS] if address else None,
            user_agent[:_MAX_AGENT] if user_agent else None,
        )


#: The client of commands run by the operator on the server itself.
OPERATOR = Client(address="cli", user_agent=None)
