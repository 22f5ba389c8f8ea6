"""Run a real mail server in the test process: aiosmtpd, with STARTTLS or TLS, and AUTH.

``SmtpServer`` is the mail server a deployment would have: STARTTLS required before anything
else (or TLS from the first byte, for ``smtps://``), and a login with one user and password.
Every message it takes lands in its ``Inbox``; it refuses the recipients its ``refusals``
name. It stops and starts again on the same port, for an outage. ``Gate`` stands in front of
it as a mail server that accepts connections and then says nothing, until it is opened and
lets the conversation through: the mail server that hangs rather than refuses, which would
hold whatever waits on it until smtplib's timeout.

The certificate is made here with cryptography (a little authority and the server's certificate
for 127.0.0.1 and localhost); ``SSL_CERT_FILE`` pointed at the authority's file makes
ssl.create_default_context() trust it, in this process and in any process it starts.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import free_port

#: The one login the server accepts. The password needs percent-encoding in a URL, so the
#: tests also show that the smtp_url's password is decoded.
USER = "yupnope-mailer"
PASSWORD = "p@ss word/2"

#: Seconds a test waits for mail at most: far more than a delivery on this machine takes.
WAIT_SECONDS = 10

# aiosmtpd 1.4 logs this at every successful AUTH: its own code sets the deprecated attribute
# (SMTP.smtp_AUTH), whatever the authenticator returns, so it would fill every failure's log.
logging.getLogger("mail.log").addFilter(
    lambda record: not record.getMessage().startswith("Session.login_data is deprecated")
)


@dataclass(frozen=True)
class Certificate:
    """Files of a server certificate: the authority that signed it, the chain, the key."""

    authority: Path
    chain: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """Return the TLS context a server presents this certificate with."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.chain, self.key)
        return context


def make_certificate(folder: Path) -> Certificate:
    """Make an authority and a certificate it signs for 127.0.0.1 and localhost, in ``folder``.

    An authority apart from the server's certificate, with the extensions a strict check
    (Python 3.13's VERIFY_X509_STRICT) wants, rather than one self-signed certificate for both.
    """
    now = datetime.now(UTC)
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yupnope test mail CA")])
    authority = (
        x509.CertificateBuilder()
        .subject_name(authority_name)
        .issuer_name(authority_name)
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(authority_key.public_key()), critical=False
        )
        .sign(authority_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(authority_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = Certificate(folder / "ca.pem", folder / "server-chain.pem", folder / "server-key.pem")
    files.authority.write_bytes(authority.public_bytes(pem))
    files.chain.write_bytes(server.public_bytes(pem) + authority.public_bytes(pem))
    files.key.write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Received:
    """One message the server took, with how it came: over TLS or not, logged in as whom."""

    message: EmailMessage
    mail_from: str
    recipients: list[str]
    tls: bool
    login: str | None


class Inbox:
    """Keep what the server received; safe to read from the tests' thread while it arrives."""

    def __init__(self) -> None:
        self._received: list[Received] = []
        self._arrived = threading.Condition()

    def add(self, received: Received) -> None:
        with self._arrived:
            self._received.append(received)
            self._arrived.notify_all()

    @property
    def received(self) -> list[Received]:
        """Return everything received so far, oldest first."""
        with self._arrived:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        """Return the messages received so far, oldest first."""
        return [found.message for found in self.received]

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        """Return everything received once there are ``count``; fail if not within ``timeout``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(
                    f"{len(self._received)} of {count} messages arrived in {timeout} s"
                )
            return list(self._received)


class _Handler:
    """Refuse each recipient in ``refusals`` with its reply; put every message taken in the inbox.

    These are aiosmtpd's handler hooks, which it finds by their names.
    """

    def __init__(self, inbox: Inbox, refusals: dict[str, str]) -> None:
        self.inbox = inbox
        self.refusals = refusals

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self.refusals.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        transport = server.transport
        self.inbox.add(
            Received(
                message=message,
                mail_from=envelope.mail_from or "",
                recipients=list(envelope.rcpt_tos),
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                login=login.decode() if login is not None else None,
            )
        )
        return "250 Message accepted for delivery"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept USER with PASSWORD, by PLAIN or LOGIN; refuse anyone else (535)."""
    good = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd answers 235 or 535 itself; auth_data is what the session keeps.
    return AuthResult(success=good, handled=False, auth_data=auth_data if good else None)


class _Connection(SMTP):
    """aiosmtpd's server side of one connection, listed while it is open."""

    def __init__(self, open_now: set[_Connection], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_now = open_now

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.open_now.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.open_now.discard(self)
        super().connection_lost(error)


class _Controller(Controller):
    """aiosmtpd's controller, which ends the connections still open when it stops.

    Stopped with a connection open (a client slow to hang up, or one the Gate relays), the
    plain Controller closes its loop under that connection's transport, which Python then
    reports as unclosed (a ResourceWarning, an error here) whenever it is collected.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_now: set[_Connection] = set()

    def factory(self) -> SMTP:
        return _Connection(self.open_now, self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        async def hang_up() -> None:
            for connection in list(self.open_now):
                if isinstance(connection.transport, asyncio.Transport):
                    # Abort, not close: closing TLS waits for the client's close_notify.
                    connection.transport.abort()
            while self.open_now:
                await asyncio.sleep(0.01)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(hang_up(), self.loop).result(WAIT_SECONDS)
        super().stop(no_assert)


class SmtpServer:
    """A mail server on 127.0.0.1 that wants TLS and a login, and keeps what it receives.

    ``implicit_tls``: TLS from the first byte (``smtps://``), else STARTTLS before anything
    (``smtp+starttls://``). It can stop and start again on the same port, keeping its inbox.
    """

    def __init__(self, certificate: Certificate, implicit_tls: bool = False) -> None:
        self.certificate = certificate
        self.implicit_tls = implicit_tls
        self.port = free_port()
        self.inbox = Inbox()
        #: Recipients to refuse, with the reply: ``"550 5.1.1 No such mailbox"`` for good.
        self.refusals: dict[str, str] = {}
        self._controller: _Controller | None = None

    @property
    def scheme(self) -> str:
        return "smtps" if self.implicit_tls else "smtp+starttls"

    def url(self, user: str = USER, password: str = PASSWORD, port: int | None = None) -> str:
        """Return the smtp_url that reaches this server (or ``port``) with this login."""
        login = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"{self.scheme}://{login}@127.0.0.1:{port or self.port}"

    def start(self) -> SmtpServer:
        """Listen on the server's port; return once it answers."""
        tls = self.certificate.server_context()
        if self.implicit_tls:
            # aiosmtpd 1.4 counts only STARTTLS for auth_require_tls (SMTP.smtp_AUTH checks
            # _tls_protocol), so it would refuse every login here, though the connection is
            # TLS from its first byte. Without it, auth_required would warn (a UserWarning that
            # is an error here), so a login is offered, not required: Received.login shows it.
            options: dict[str, Any] = {"ssl_context": tls, "auth_require_tls": False}
        else:
            options = {
                "tls_context": tls,
                "require_starttls": True,
                "auth_require_tls": True,
                "auth_required": True,
            }
        self._controller = _Controller(
            _Handler(self.inbox, self.refusals),
            hostname="127.0.0.1",
            port=self.port,
            # A name of its own, or aiosmtpd asks the resolver for this machine's (getfqdn).
            server_hostname="localhost",
            authenticator=_authenticate,
            **options,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening, unless stopped already; what it received stays in the inbox."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class Gate:
    """Accept connections for the mail server and say nothing, until opened; then relay.

    Held shut, a client connects and waits for a greeting that does not come, as with a mail
    server that hangs. Opened, each connection, those waiting included, is joined to the server
    at ``target_port`` and every byte passes both ways unchanged (TLS included).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        # Wakes the accepting thread now and then to see whether the gate is closing down:
        # closing a socket does not wake an accept() blocked on it in another thread.
        self._listener.settimeout(0.1)
        self._opened = threading.Event()
        # Guards what follows; the threads that relay add to it while close() may be reading.
        self._state = threading.Condition()
        self._closing = False
        self._connections = 0
        self._sockets: list[socket.socket] = [self._listener]
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def wait_for_connections(self, count: int, timeout: float = WAIT_SECONDS) -> None:
        """Return once ``count`` clients have connected; fail if not within ``timeout``."""
        with self._state:
            if not self._state.wait_for(lambda: self._connections >= count, timeout):
                raise AssertionError(f"{self._connections} of {count} connections in {timeout} s")

    def open(self) -> None:
        """Let every connection through to the mail server, those waiting included."""
        self._opened.set()

    def close(self) -> None:
        """Stop accepting and end every connection."""
        with self._state:
            self._closing = True
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                # Shut down first: a recv() blocked in another thread wakes only then.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                # Not connected, or the other side ended it already.
                pass
            sock.close()
        for thread in threads:
            thread.join(WAIT_SECONDS)

    def _keep(self, sock: socket.socket) -> bool:
        """List ``sock`` for close() to end; or end it now, and say so, if closing already."""
        with self._state:
            if not self._closing:
                self._sockets.append(sock)
                return True
        sock.close()
        return False

    def _start(self, target: Callable[..., object], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._state:
            if self._closing:
                return
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                # close() ended the listener.
                return
            if not self._keep(client):
                return
            with self._state:
                self._connections += 1
                self._state.notify_all()
            self._start(self._relay, client)

    def _relay(self, client: socket.socket) -> None:
        while not self._opened.wait(0.1):
            with self._state:
                if self._closing:
                    return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), WAIT_SECONDS)
        except OSError:
            # The mail server is down: the client sees its connection end.
            client.close()
            return
        if self._keep(upstream):
            self._start(_pipe, upstream, client)
            _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes from ``source`` to ``sink`` until ``source`` ends; then end ``sink``'s side."""
    source.settimeout(None)
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        # The other side, or close(), ended the connection: nothing more to copy.
        return


def wait_until(condition: Callable[[], object], timeout: float = WAIT_SECONDS) -> None:
    """Return once ``condition()`` is true; fail if it is not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        time.sleep(0.05)
