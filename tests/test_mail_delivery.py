"""Test that mail reaches a real mail server: over STARTTLS or TLS, logged in, exactly once.

The mail server is aiosmtpd in this process (smtp_server.py), with a certificate the tests make
and trust through ``SSL_CERT_FILE``. A letter is queued as a request queues it, and sent by the
sender every process runs (``yupnope mail send``, or the sender itself with a chosen ``now``
to step past a retry's wait), or, in a live server, by its postman thread.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from helpers import (
    SAME_ORIGIN,
    TIMEOUT,
    LiveServer,
    add_user,
    assert_one_line_error,
    browser_of,
    environment,
    free_port,
    run_cli,
)
from smtp_server import (
    PASSWORD,
    USER,
    Certificate,
    Gate,
    SmtpServer,
    make_certificate,
    wait_until,
)
from yupnope import wiring
from yupnope.client import Client
from yupnope.mail.letters import Letter
from yupnope.mail.outbox import Outbox
from yupnope.mail.sender import GIVE_UP_AFTER, LONGEST_RETRY, Sender, retry_wait
from yupnope.mail_tables import OutgoingMail

MAIL_FROM = "yupnope <login@example.com>"
PUBLIC_URL = "https://login.example.com"
ADA = "ada@example.com"
BOB = "bob@example.com"

#: A reset link as the letter writes it: the public URL, then the token.
RESET_LINK = re.compile(re.escape(PUBLIC_URL) + r"/reset/([A-Za-z0-9_-]+)")

#: Seconds a request that queues mail may take at most while the mail server hangs: a bound far
#: under smtplib's 20 s timeout (mail/smtp.py), not a measure of speed.
PROMPT_SECONDS = 5


def mail_settings(smtp_url: str) -> dict[str, str]:
    """Return the settings of an app that mails through ``smtp_url``."""
    return {
        "email": "optional",
        "smtp_url": smtp_url,
        "mail_from": MAIL_FROM,
        "public_url": PUBLIC_URL,
    }


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """Return the mail server's certificate and its authority, made once for the run."""
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """Make this process, and the servers it starts, trust the mail server's certificate."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.authority))
    return certificate


@pytest.fixture
def mail_servers(certificate: Certificate) -> Iterator[Callable[..., SmtpServer]]:
    """Return a function that starts mail servers; all stop at the end."""
    servers: list[SmtpServer] = []

    def start(implicit_tls: bool = False) -> SmtpServer:
        server = SmtpServer(certificate, implicit_tls=implicit_tls)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp(trusted: Certificate, mail_servers: Callable[..., SmtpServer]) -> SmtpServer:
    """Return a running mail server that wants STARTTLS and a login, trusted by this process."""
    return mail_servers()


@pytest.fixture
def gate(smtp: SmtpServer) -> Iterator[Gate]:
    """Return a mail server that hangs, in front of ``smtp``, until it is opened."""
    found = Gate(smtp.port)
    yield found
    found.close()


@pytest.fixture
def mail_app(app_factory: Callable[..., Flask], smtp: SmtpServer) -> Iterator[Flask]:
    """Return an app that mails through ``smtp``.

    Its sender thread, if a request started one, stops at the end, before the mail server.
    """
    app = app_factory(**mail_settings(smtp.url()))
    yield app
    postman = wiring.get(app).postman
    assert postman is not None
    postman.stop()


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    """Give the CLI commands ``settings``, as an operator's environment would."""
    for name, value in environment(settings).items():
        monkeypatch.setenv(name, value)


def with_verified_address(app: Flask, username: str, address: str) -> int:
    """Create ``username`` with ``address`` verified by the operator; return the user's id."""
    add_user(app, username)
    with app.app_context():
        user = wiring.operator().find(username)
        wiring.addresses().set_by_operator(user, address, datetime.now(UTC))
        return user.id


def ask_reset(app: Flask, typed: str) -> None:
    """Ask for a reset letter to ``typed``, as the forgot-password form does."""
    with app.app_context():
        wiring.resets().ask(typed, Client.of("203.0.113.7", "pytest"), datetime.now(UTC))


def outbox(app: Flask) -> list[OutgoingMail]:
    """Return every row of the outbox, oldest first."""
    with app.app_context():
        return list(wiring.store().mail.outbox())


def sender_of(app: Flask, store: Any) -> Sender:
    """Return the sender of ``app``'s postman (its letters, server, reset lifetime) on ``store``."""
    postman = wiring.get(app).postman
    assert postman is not None
    return Sender(store, postman.letters, postman.server, postman.reset_lifetime)


def send_due(app: Flask, now: datetime) -> int:
    """Send what is due at ``now`` with ``app``'s sender, on a store of its own."""
    with wiring.get(app).own_store() as store:
        return sender_of(app, store).send_due(now)


def parts(message: EmailMessage) -> tuple[str, str]:
    """Return a message's plain-text and HTML bodies."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None, message.as_string()
    return text.get_content(), html.get_content()


def reset_token(message: EmailMessage) -> str:
    """Return the token of a reset letter's link, the same in both its parts."""
    text, html = parts(message)
    in_text, in_html = RESET_LINK.findall(text), RESET_LINK.findall(html)
    assert len(in_text) == 1 and in_html == in_text, (text, html)
    token: str = in_text[0]
    return token


# `yupnope mail test ADDRESS`


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_mail_test_delivers_a_letter_with_text_and_html(
    app_factory: Callable[..., Flask],
    runner: CliRunner,
    trusted: Certificate,
    mail_servers: Callable[..., SmtpServer],
    monkeypatch: pytest.MonkeyPatch,
    implicit_tls: bool,
) -> None:
    smtp = mail_servers(implicit_tls=implicit_tls)
    settings = mail_settings(smtp.url())
    app_factory(**settings)
    use_settings(monkeypatch, settings)

    result = run_cli(runner, "mail", "test", ADA)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Sent a test mail to {ADA} through 127.0.0.1:{smtp.port}.\n"
    (received,) = smtp.inbox.wait_for(1)
    assert received.tls
    assert received.login == USER
    assert received.recipients == [ADA]
    assert received.mail_from == "login@example.com"
    message = received.message
    assert message["Subject"] == "A test mail from yupnope"
    assert message["From"] == MAIL_FROM
    assert message["To"] == ADA
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert f"This is a test mail from yupnope at {PUBLIC_URL}" in text
    assert "<html" in html
    assert f"This is a test mail from yupnope at {PUBLIC_URL}" in html


@pytest.mark.parametrize("failure", ["wrong password", "nothing listening", "untrusted"])
def test_mail_test_says_in_one_line_why_it_failed(
    app_factory: Callable[..., Flask],
    runner: CliRunner,
    certificate: Certificate,
    mail_servers: Callable[..., SmtpServer],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    smtp = mail_servers()
    wrong = "not-the-password"
    if failure == "wrong password":
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.authority))
        port, url, why = smtp.port, smtp.url(password=wrong), "SMTPAuthenticationError"
    elif failure == "nothing listening":
        port = free_port()
        url, why = smtp.url(port=port), "ConnectionRefusedError"
    else:
        # No SSL_CERT_FILE: the server's certificate is signed by nobody this process trusts.
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        port, url, why = smtp.port, smtp.url(), "SSLCertVerificationError"
    settings = mail_settings(url)
    app_factory(**settings)
    use_settings(monkeypatch, settings)

    result = run_cli(runner, "mail", "test", ADA)

    assert_one_line_error(result, f"127.0.0.1:{port}", why)
    # The URL holds the password: the error names the server, never the URL.
    assert PASSWORD not in result.stderr and wrong not in result.stderr
    assert smtp.inbox.received == []


def test_instance_templates_replace_the_shipped_ones(
    app_factory: Callable[..., Flask],
    runner: CliRunner,
    smtp: SmtpServer,
    instance: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = mail_settings(smtp.url())
    app_factory(**settings)
    use_settings(monkeypatch, settings)
    own = instance / "templates" / "mail"
    own.mkdir(parents=True)
    (own / "test.txt").write_text(
        "Subject: Our mail works\n\nGreetings from the front desk of {{ public_url }}.\n"
    )

    result = run_cli(runner, "mail", "test", ADA)

    assert result.exit_code == 0, result.output
    (received,) = smtp.inbox.wait_for(1)
    assert received.message["Subject"] == "Our mail works"
    text, html = parts(received.message)
    assert text.strip() == f"Greetings from the front desk of {PUBLIC_URL}."
    # Only the file the instance has is replaced: the HTML part is still the shipped one.
    assert "its mail settings work" in html


# Letters queued by requests, sent by the sender.


def test_reset_goes_once_and_only_to_a_verified_address(mail_app: Flask, smtp: SmtpServer) -> None:
    with_verified_address(mail_app, "ada", ADA)
    add_user(mail_app, "bob")
    with mail_app.app_context():
        bob = wiring.operator().find("bob")
        # Given but not verified: it receives the link that verifies it, and nothing else.
        wiring.addresses().ask(bob, BOB, datetime.now(UTC))
    browser = browser_of(mail_app)

    # The same request for each: a verified address, one given but not verified, one that is
    # nobody's. Only the sender, off the request's path, tells them apart; this process's
    # sender thread starts with the first request.
    for typed in [ADA, BOB, "nobody@example.com"]:
        answer = browser.post("/forgot", data={"email": typed}, headers=SAME_ORIGIN)
        assert answer.status_code == 200

    received = smtp.inbox.wait_for(2)
    # Every row done: two sent, the two resets with nobody to write to dropped unwritten.
    wait_until(lambda: all(row.sent_at is not None for row in outbox(mail_app)))
    assert len(outbox(mail_app)) == 4
    assert all(row.attempts == 1 and row.last_error is None for row in outbox(mail_app))
    assert len(smtp.inbox.received) == 2
    subjects = {found.recipients[0]: found.message["Subject"] for found in received}
    assert subjects == {
        ADA: "Reset your password",
        BOB: "Confirm your email address",
    }
    (to_ada,) = [found for found in received if found.recipients == [ADA]]
    assert to_ada.tls and to_ada.login == USER
    assert to_ada.message["To"] == ADA
    assert "Hello ada," in parts(to_ada.message)[0]
    # The link, as mailed, opens the page that chooses ada's new password.
    page = browser.get(f"{PUBLIC_URL}/reset/{reset_token(to_ada.message)}")
    assert page.status_code == 200
    assert b"For the account <strong>ada</strong>" in page.data


def test_mail_send_sends_what_is_due(
    mail_app: Flask, smtp: SmtpServer, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, mail_settings(smtp.url()))
    with_verified_address(mail_app, "ada", ADA)
    ask_reset(mail_app, ADA)
    ask_reset(mail_app, "nobody@example.com")

    first = run_cli(runner, "mail", "send")
    again = run_cli(runner, "mail", "send")

    assert (first.exit_code, first.stdout) == (0, "Sent 1 mail.\n"), first.output
    assert (again.exit_code, again.stdout) == (0, "Sent 0 mails.\n"), again.output
    (received,) = smtp.inbox.wait_for(1)
    assert received.recipients == [ADA]
    assert received.message["Subject"] == "Reset your password"


def test_mail_waits_out_an_outage_and_goes_once(mail_app: Flask, smtp: SmtpServer) -> None:
    ada_id = with_verified_address(mail_app, "ada", ADA)
    smtp.stop()
    ask_reset(mail_app, ADA)
    first = datetime.now(UTC)

    assert send_due(mail_app, first) == 0

    (row,) = outbox(mail_app)
    assert row.sent_at is None
    assert row.attempts == 1
    assert row.last_error is not None and "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at == first + retry_wait(1)
    assert row.leased_until is None
    # Before its wait is over the letter is not tried again, even with the server back.
    smtp.start()
    assert send_due(mail_app, first + retry_wait(1) - timedelta(seconds=1)) == 0
    assert outbox(mail_app)[0].attempts == 1

    later = first + retry_wait(1)
    assert send_due(mail_app, later) == 1
    assert send_due(mail_app, later + timedelta(hours=2)) == 0

    (received,) = smtp.inbox.wait_for(1)
    assert received.recipients == [ADA]
    (row,) = outbox(mail_app)
    assert row.sent_at == later
    assert row.attempts == 2
    assert row.last_error is None
    with mail_app.app_context():
        assert wiring.resets().check(reset_token(received.message), later).id == ada_id


@pytest.mark.parametrize(
    ("reply", "dropped"),
    [("550 5.1.1 No such mailbox here", True), ("452 4.2.2 Mailbox full", False)],
    ids=["permanent", "temporary"],
)
def test_a_refused_recipient_is_dropped_only_for_good(
    mail_app: Flask, smtp: SmtpServer, reply: str, dropped: bool
) -> None:
    smtp.refusals["gone@example.com"] = reply
    with mail_app.app_context():
        Outbox(wiring.store()).queue(Letter.TEST, "gone@example.com", datetime.now(UTC))
    first = datetime.now(UTC)

    assert send_due(mail_app, first) == 0

    (row,) = outbox(mail_app)
    assert row.last_error is not None and reply[:3] in row.last_error
    assert (row.sent_at is not None) is dropped
    # Refused for good, it is never tried again; refused for now, it is, after its wait.
    assert send_due(mail_app, first + timedelta(days=1)) == 0
    assert outbox(mail_app)[0].attempts == (1 if dropped else 2)
    assert smtp.inbox.received == []


def test_a_letter_failing_for_a_week_is_dropped(mail_app: Flask, smtp: SmtpServer) -> None:
    smtp.refusals["full@example.com"] = "452 4.2.2 Mailbox full"
    queued = datetime.now(UTC)
    with mail_app.app_context():
        Outbox(wiring.store()).queue(Letter.TEST, "full@example.com", queued)

    assert send_due(mail_app, queued) == 0
    almost = queued + GIVE_UP_AFTER - timedelta(seconds=1)
    assert send_due(mail_app, almost) == 0
    (row,) = outbox(mail_app)
    assert (row.sent_at, row.attempts) == (None, 2)

    given_up = almost + LONGEST_RETRY
    assert send_due(mail_app, given_up) == 0
    (row,) = outbox(mail_app)
    assert row.sent_at == given_up
    assert row.last_error is not None and "452" in row.last_error
    assert send_due(mail_app, given_up + GIVE_UP_AFTER) == 0
    assert outbox(mail_app)[0].attempts == 3
    assert smtp.inbox.received == []


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_two_senders_send_each_mail_once(
    app_factory: Callable[..., Flask], smtp: SmtpServer
) -> None:
    settings = mail_settings(smtp.url())
    first, second = app_factory(**settings), app_factory(**settings)
    recipients = [f"person{n}@example.com" for n in range(20)]
    with first.app_context():
        queue = Outbox(wiring.store())
        for recipient in recipients:
            queue.queue(Letter.TEST, recipient, datetime.now(UTC))
    # Both look at the outbox at the same moment, so both see every letter due.
    start = threading.Barrier(2, timeout=10)
    sent: list[int] = []
    failures: list[BaseException] = []

    def send(app: Flask) -> None:
        postman = wiring.get(app).postman
        assert postman is not None
        try:
            start.wait()
            sent.append(postman.send_due())
        except BaseException as exc:
            # Kept for the test's own thread, where a failure counts.
            failures.append(exc)

    senders = [threading.Thread(target=send, args=(app,)) for app in (first, second)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)

    assert failures == []
    assert sum(sent) == len(recipients)
    delivered = Counter(found.recipients[0] for found in smtp.inbox.received)
    assert delivered == Counter(recipients)
    rows = outbox(first)
    assert all(row.sent_at is not None for row in rows)
    # Leased once each: neither sender so much as started on a letter the other had.
    assert [row.attempts for row in rows] == [1] * len(recipients)


# A live server: its postman thread sends, off every request's path.


@pytest.mark.live
def test_a_hanging_mail_server_slows_no_request(
    app_factory: Callable[..., Flask],
    live_server_factory: Callable[..., LiveServer],
    smtp: SmtpServer,
    gate: Gate,
) -> None:
    settings = mail_settings(smtp.url(port=gate.port))
    app = app_factory(**settings)
    with_verified_address(app, "ada", ADA)
    with_verified_address(app, "bob", BOB)
    # One worker: the process that queues the letters is the one whose sender they wake.
    server = live_server_factory(workers=1, **settings)
    http = requests.Session()
    http.headers.update({"Host": "login.example.com", **SAME_ORIGIN})

    def forgot(address: str) -> None:
        started = time.monotonic()
        answer = http.post(server.url + "/forgot", data={"email": address}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text[:300]
        assert time.monotonic() - started < PROMPT_SECONDS

    forgot(ADA)
    # The sender now waits on the mail server for a greeting that does not come. A letter
    # queued meanwhile is queued as promptly: the sender holds nothing a request needs.
    gate.wait_for_connections(1)
    forgot(BOB)
    assert smtp.inbox.received == []

    gate.open()

    received = smtp.inbox.wait_for(2)
    assert sorted(found.recipients[0] for found in received) == [ADA, BOB]
    for found in received:
        assert found.tls and found.login == USER
        assert found.message["Subject"] == "Reset your password"
        assert RESET_LINK.search(parts(found.message)[0])
