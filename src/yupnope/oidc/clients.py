"""Register the apps that sign their users in with yupnope: the operator's clients.

A client is what authlib asks about during a flow (``RegisteredClient``, its ClientMixin): its
redirect URIs, matched exactly (OAuth 2.0 Security BCP, RFC 9700 2.1), its secret, kept as a
sha256 digest only and shown once (it is 256 random bits, so a fast digest loses nothing), and
the groups whose members may use it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from .. import groupnames
from ..errors import InvalidGroupName
from ..provider_tables import OidcClient
from ..security import tokens
from ..store import Store
from .errors import InvalidClientSetting, PublicClient, UnknownClient
from .keys import ALGORITHMS

#: The scopes the provider knows: ``openid`` (the ID token's ``sub``), ``profile``
#: (``preferred_username``), ``email`` (the verified address), ``groups`` and
#: ``offline_access`` (a refresh token).
SCOPES = ("openid", "profile", "email", "groups", "offline_access")

#: Random bytes of a client id (URL-safe base64: 24 characters).
CLIENT_ID_BYTES = 18


@dataclass(frozen=True)
class RegisteredClient:
    """Hold one client as the protocol's checks read it (authlib's ClientMixin)."""

    row: int
    client_id: str
    name: str
    secret_digest: str | None
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    allowed_groups: tuple[str, ...]
    consent: bool
    id_token_alg: str
    created_at: datetime

    @classmethod
    def of(cls, record: OidcClient) -> RegisteredClient:
        """Return the client of a row."""
        return cls(
            row=record.id,
            client_id=record.client_id,
            name=record.name,
            secret_digest=record.secret_digest,
            redirect_uris=tuple(record.redirect_uris.split("\n")),
            scopes=tuple(record.scopes.split()),
            allowed_groups=tuple(filter(None, record.allowed_groups.split(","))),
            consent=record.consent,
            id_token_alg=record.id_token_alg,
            created_at=record.created_at,
        )

    @property
    def public(self) -> bool:
        """Say whether the client has no secret (a browser or native app, with PKCE)."""
        return self.secret_digest is None

    def admits(self, groups: Sequence[str]) -> bool:
        """Say whether a member of ``groups`` may sign in to this client."""
        return not self.allowed_groups or bool(set(self.allowed_groups) & set(groups))

    @property
    def client_metadata(self) -> dict[str, list[str]]:
        """Return where the app may send a person after logging out (RP-Initiated Logout 3).

        A redirect URI itself, or its origin's root: the app's front page.
        """
        uris = list(self.redirect_uris)
        for uri in self.redirect_uris:
            parts = urlsplit(uri)
            if parts.scheme in ("http", "https"):
                uris.append(f"{parts.scheme}://{parts.netloc}/")
        return {"post_logout_redirect_uris": list(dict.fromkeys(uris))}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only a client with one redirect URI may leave it out of a request (RFC 6749 3.1.2.3).
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_digest is None:
            return False
        return hmac.compare_digest(tokens.digest(client_secret), self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return "offline_access" in self.scopes
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class NewClient:
    """Say what the operator must hand to the app: its id and, once, its secret."""

    client_id: str
    client_secret: str | None


def check_redirect_uri(uri: str) -> str:
    """Return ``uri`` if it may be a redirect URI, or raise InvalidClientSetting.

    Absolute, without a fragment (RFC 6749 3.1.2); http(s) with a host, or a native app's
    private-use scheme in reverse-domain form (RFC 8252 7.1).
    """
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise InvalidClientSetting(f"A redirect URI has no fragment: {uri!r}.", "redirect_uri")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidClientSetting(f"The redirect URI {uri!r} has no host.", "redirect_uri")
        return uri
    if "." in parts.scheme and parts.path:
        return uri
    raise InvalidClientSetting(
        f"The redirect URI {uri!r} is not an absolute http(s) URL or an app's reverse-domain "
        "scheme (such as com.example.app:/callback).",
        "redirect_uri",
    )


class Clients:
    """Add, list, remove clients and make new secrets for them: the operator's part."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        name: str,
        redirect_uris: Sequence[str],
        now: datetime,
        public: bool = False,
        consent: bool = True,
        scopes: Sequence[str] = SCOPES,
        groups: Sequence[str] = (),
        id_token_alg: str = ALGORITHMS[0],
    ) -> NewClient:
        """Register a client; return its id and its secret (None for a public client)."""
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidClientSetting("A client's name is 1 to 100 characters.", "name")
        if not redirect_uris:
            raise InvalidClientSetting("A client needs a redirect URI.", "redirect_uri")
        uris = [check_redirect_uri(uri) for uri in dict.fromkeys(redirect_uris)]
        unknown = [scope for scope in scopes if scope not in SCOPES]
        if unknown or "openid" not in scopes:
            raise InvalidClientSetting(
                f"The scopes are among {', '.join(SCOPES)}, openid always.", "scopes"
            )
        try:
            group_names = sorted({groupnames.parse(group) for group in groups})
        except InvalidGroupName as exc:
            raise InvalidClientSetting(str(exc), "groups") from exc
        if id_token_alg not in ALGORITHMS:
            raise InvalidClientSetting(
                f"ID tokens are signed with {' or '.join(ALGORITHMS)}.", "id_token_alg"
            )
        secret = None if public else tokens.new_token()
        client_id = secrets.token_urlsafe(CLIENT_ID_BYTES)
        with self.store.tx.write():
            self.store.apps.add_client(
                OidcClient(
                    client_id=client_id,
                    name=name,
                    secret_digest=None if secret is None else tokens.digest(secret),
                    redirect_uris="\n".join(uris),
                    scopes=" ".join(s for s in SCOPES if s in scopes),
                    allowed_groups=",".join(group_names),
                    consent=consent,
                    id_token_alg=id_token_alg,
                    created_at=now,
                )
            )
        return NewClient(client_id, secret)

    def find(self, client_id: str) -> RegisteredClient | None:
        """Return the client of ``client_id``, or None."""
        record = self.store.apps.client(client_id)
        return None if record is None else RegisteredClient.of(record)

    def all(self) -> list[RegisteredClient]:
        """Return every client, oldest first."""
        return [RegisteredClient.of(record) for record in self.store.apps.clients()]

    def remove(self, client_id: str) -> None:
        """Remove a client with every code, token and consent it had."""
        with self.store.tx.write():
            if not self.store.apps.delete_client(client_id):
                raise UnknownClient(client_id)

    def rotate_secret(self, client_id: str) -> str:
        """Give a confidential client a new secret, the old one refused from now; return it."""
        secret = tokens.new_token()
        with self.store.tx.write():
            if not self.store.apps.set_secret(client_id, tokens.digest(secret)):
                if self.store.apps.client(client_id) is None:
                    raise UnknownClient(client_id)
                raise PublicClient(client_id)
        return secret
