"""Declare the tables: users, their sessions and groups, second factors, and the event log.

The frozen snapshots every signed-in request's lookup reads its row into are in snapshots.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, LargeBinary, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware UTC times and give them back aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC time is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no zone: what went in was UTC, so say so on the way out.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Hold the metadata every table and migration shares."""


class User(Base):
    """Record one account: its name as typed, its key and skeleton, its password hash, its state."""

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_username_skeleton", "username_skeleton", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    #: NFKC and case-folded form of the name, unique so "Alice" and "ALICE" are one account.
    username_key: Mapped[str] = mapped_column(String(256), unique=True)
    #: UTS #39 skeleton of the key, unique so "alice" and "аlice" (Cyrillic а) are one account.
    #: At most 7 characters for each of a name's 64 (a Hangul syllable's are the longest). NULL
    #: only for an account that looked like an older one when the column came (migration 0004).
    username_skeleton: Mapped[str | None] = mapped_column(String(512), default=None)
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(default=False)
    #: Set when the password no longer passes the policy (an import of weak passwords).
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Group(Base):
    """Record one group of users, which access rules and proxies will know by its name."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Lower-case ASCII letters, digits, ".", "_" and "-" (groupnames.py): nothing a
    #: comma-separated header or a ``group:NAME`` rule would have to quote.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupMember(Base):
    """Record that one user is in one group; the row goes with either of them."""

    __tablename__ = "group_members"
    # The primary key serves a user's groups, this index a group's members.
    __table_args__ = (Index("ix_group_members_group_id", "group_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class SessionKind(StrEnum):
    """Name how a session's token travels: in a browser's cookie, or as an API bearer token."""

    BROWSER = "browser"
    API = "api"


class SecondFactor(StrEnum):
    """Name what proved a login's second step."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"


class Credential:
    """Hold the columns a session and a personal token share: a token kept as its sha256 only."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Session(Credential, Base):
    """Record one logged-in browser or client."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)

    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)
    #: A SessionKind: a token is only accepted the way it was handed out.
    kind: Mapped[str] = mapped_column(String(16), default=SessionKind.BROWSER.value)
    #: The second factor the login proved (a SecondFactor), or None for a password alone.
    second_factor: Mapped[str | None] = mapped_column(String(16), default=None)
    #: When the owner last proved who they are with this session (a login, a password asked
    #: again): what sudo mode looks at. None for a session older than the column.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PersonalToken(Credential, Base):
    """Record one named, long-lived API token a user made for a script."""

    __tablename__ = "personal_tokens"
    __table_args__ = (Index("ix_personal_tokens_user_id", "user_id"),)

    name: Mapped[str] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TotpFactor(Base):
    """Record a user's authenticator app: the shared secret, sealed, and the last step used."""

    __tablename__ = "totp_factors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: The base32 secret sealed under the user's id (security/sealing.py), never in clear.
    sealed_secret: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: None while the enrolment waits for its first code: until then it opens nothing.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The time step of the last code taken: a code is good once, on every worker.
    last_step: Mapped[int | None] = mapped_column(default=None)


class RecoveryCode(Base):
    """Record one of a user's single-use recovery codes, by its digest only."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginChallenge(Base):
    """Record a login half done: the password was right, the second factor is still to come.

    Not a session: it opens nothing. Its token travels in a short-lived cookie (a browser) or
    the API's ``challenge`` member, and only that way (``kind``).
    """

    __tablename__ = "login_challenges"
    __table_args__ = (Index("ix_login_challenges_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Passkey(Base):
    """Record one of a user's passkeys (a WebAuthn credential): its public key and counter."""

    __tablename__ = "passkeys"
    __table_args__ = (Index("ix_passkeys_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: base64url, as browsers send it; at most 1023 bytes (WebAuthn Level 3, 5.1), 1364 here.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    user_handle: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[bytes] = mapped_column(LargeBinary())
    #: The authenticator's signature counter: 32 bits unsigned, beyond PostgreSQL's integer.
    sign_count: Mapped[int] = mapped_column(BigInteger(), default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")
    name: Mapped[str] = mapped_column(String(64))
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PasskeyChallenge(Base):
    """Record a WebAuthn challenge, by its digest, and what it is bound to (see ceremonies.py)."""

    __tablename__ = "passkey_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: What the ceremony is for, and the session, half-done login or browser it belongs to.
    binding: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginEvent(Base):
    """Record one thing that happened to an account: a login, a failure, a change by its owner."""

    __tablename__ = "login_events"
    __table_args__ = (
        Index("ix_login_events_at", "at"),
        Index("ix_login_events_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    #: The account, kept after the account is removed as a plain number.
    user_id: Mapped[int | None] = mapped_column(default=None)
    #: The name the event was about, as typed (for a failed login, perhaps no account's name).
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The group an operator's change was about, kept after the group is removed.
    group_name: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The app (an OpenID Connect client's name) a sign-in to apps was about, kept after the app
    #: is removed.
    app_name: Mapped[str | None] = mapped_column(String(100), default=None)
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)


class ThrottleCounter(Base):
    """Count attempts of one kind (an account, an address, a device, all) in a time window.

    Every worker and every instance updates the same row with one atomic statement, so the
    counts are exact however many processes serve.
    """

    __tablename__ = "throttle_counters"

    #: What is counted: ``account``, ``device``, ``address``, ``global`` or ``signup``.
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Which one: a folded user name's digest, a device id, an address, or ``*``.
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set by the progressive delay: no attempt is admitted before this time.
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
