"""Reach the mail server of ``YUPNOPE_SMTP_URL`` and hand it a message, with smtplib."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError

#: Seconds to wait for the mail server at each step: a sender thread waits, never a request.
TIMEOUT_SECONDS = 20

#: The default port of each scheme (RFC 5321 plain, RFC 6409 submission with STARTTLS,
#: RFC 8314 implicit TLS).
_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class MailServer:
    """Say how to reach the mail server: host, port, TLS, and the credentials to log in with."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def of(cls, url: str, where: str = "YUPNOPE_SMTP_URL") -> MailServer:
        """Return the server ``url`` names, or raise a one-line ConfigError (without the URL)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigError(f"{where} is not a URL like smtp+starttls://host:587") from None
        if parts.scheme not in _PORTS or not parts.hostname:
            raise ConfigError(f"{where} must be smtp://, smtp+starttls:// or smtps:// with a host")
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port or _PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server; raise OSError or smtplib.SMTPException if it fails.

        TLS checks the server's certificate against the system's trusted authorities (and
        ``SSL_CERT_FILE``, where set), as a browser would.
        """
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
        with client:
            if self.scheme == "smtp+starttls":
                client.starttls(context=context)
            if self.username is not None:
                client.login(self.username, self.password or "")
            client.send_message(message)
