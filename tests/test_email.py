"""Test email's journeys against a real mail server: addresses, resets, and "this wasn't me".

Every mail goes through a real SMTP server in this process (tests/smtp_server.py: STARTTLS and
a login), and every link in it is followed as a person would. Delivery itself (outages, two
senders, templates) is tests/test_mail_delivery.py's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from helpers import (
    GOOD_PASSWORD,
    NEW_PASSWORD,
    PORTAL_URL,
    SAME_ORIGIN,
    add_user,
    browser_of,
    run_cli,
)
from smtp_server import SmtpServer, make_certificate
from yupnope import wiring
from yupnope.errors import ConfigError, UnknownUser
from yupnope.kinds import EventKind
from yupnope.mail_tables import MailToken
from yupnope.models import LoginEvent, Session

#: What each mailed link looks like: on the public URL, never on the request's host.
LINK = re.compile(rf"{re.escape(PORTAL_URL)}/(verify-email|reset|not-me)/([A-Za-z0-9_-]+)")


@pytest.fixture
def mail_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """Run the mail server, its certificate trusted as a deployment's would be."""
    certificate = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.authority))
    server = SmtpServer(certificate).start()
    yield server
    server.stop()


@dataclass
class Site:
    """The app with email on, its mail server, and what has been delivered."""

    app: Flask
    server: SmtpServer

    def browser(self) -> FlaskClient:
        return browser_of(self.app)

    def deliver(self, count: int) -> list[str]:
        """Send what is queued; return the text of the first ``count`` mails received."""
        postman = wiring.get(self.app).postman
        assert postman is not None
        postman.send_due()
        received = self.server.inbox.wait_for(count)
        return [_text(found.message) for found in received]

    def last_link(self, kind: str) -> str:
        """Return the path of the newest link of ``kind`` in the mail received."""
        for message in reversed(self.server.inbox.messages):
            found = [m for m in LINK.finditer(_text(message)) if m.group(1) == kind]
            if found:
                return f"/{kind}/{found[-1].group(2)}"
        raise AssertionError(f"no {kind} link in {len(self.server.inbox.messages)} mails")


def _text(message: Any) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text: str = part.get_content()
    return text


@pytest.fixture
def site(app_factory: Callable[..., Flask], mail_server: SmtpServer) -> Iterator[Site]:
    """Return an app with email optional, sending through the mail server.

    Its sender thread stops before the mail server does, so no delivery is cut off midway.
    """
    app = app_factory(
        email="optional",
        smtp_url=mail_server.url(),
        mail_from="yupnope <login@example.com>",
        public_url=PORTAL_URL,
    )
    yield Site(app, mail_server)
    postman = wiring.get(app).postman
    assert postman is not None
    postman.stop()


def log_in(browser: FlaskClient, name: str, password: str = GOOD_PASSWORD) -> Any:
    return browser.post(
        "/login", data={"username": name, "password": password}, headers=SAME_ORIGIN
    )


def with_address(site: Site, name: str, address: str) -> None:
    """Add ``name`` with ``address`` verified, as the operator does."""
    add_user(site.app, name)
    with site.app.app_context():
        user = wiring.operator().find(name)
        wiring.addresses().set_by_operator(user, address, datetime.now(UTC))


def post(browser: FlaskClient, path: str, **data: str) -> Any:
    return browser.post(path, data=data, headers=SAME_ORIGIN)


def events(app: Flask, kind: EventKind) -> int:
    with app.app_context():
        session = wiring.orm_session()
        return session.query(LoginEvent).filter_by(kind=kind.value).count()


def test_email_settings_need_their_server_sender_and_public_url(
    app_factory: Callable[..., Flask],
) -> None:
    with pytest.raises(ConfigError, match="YUPNOPE_SMTP_URL, YUPNOPE_MAIL_FROM"):
        app_factory(email="optional", public_url=PORTAL_URL)
    with pytest.raises(ConfigError, match="must start with smtp://"):
        app_factory(smtp_url="http://mail.example.com")


def test_an_address_is_verified_by_its_link_then_logs_in(site: Site) -> None:
    add_user(site.app, "ada")
    browser = site.browser()
    log_in(browser, "ada")
    asked = post(browser, "/account/email", email="Ada@Example.com")
    assert asked.status_code == 303 and "email-sent" in asked.headers["Location"]
    (text,) = site.deliver(1)
    assert "Ada@Example.com" in text
    link = site.last_link("verify-email")
    assert b"Confirm the address" in browser.get(link).data
    with site.app.app_context():
        assert wiring.addresses().of(1) is None
    assert b"Address confirmed" in post(browser, link).data
    assert post(browser, link).status_code == 410
    other = site.browser()
    assert log_in(other, "ADA@example.COM").headers["Location"].endswith("/yup")
    assert events(site.app, EventKind.EMAIL_VERIFIED) == 1


def test_a_changed_address_is_confirmed_at_the_new_one_and_told_to_the_old(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    browser = site.browser()
    log_in(browser, "ada")
    post(browser, "/account/email", email="ada@new.example")
    # The new browser's notice, the link to the new address, the change told to the old.
    texts = site.deliver(3)
    assert any("change" in text and "to ada@new.example" in text for text in texts)
    recipients = sorted(found.recipients[0] for found in site.server.inbox.received)
    assert recipients == ["ada@example.com", "ada@example.com", "ada@new.example"]
    with site.app.app_context():
        kept = wiring.addresses().of(1)
        assert kept is not None and kept.address == "ada@example.com"
    post(browser, site.last_link("verify-email"))
    with site.app.app_context():
        kept = wiring.addresses().of(1)
        assert kept is not None and kept.address == "ada@new.example"


def test_an_address_is_one_accounts(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    add_user(site.app, "bob")
    browser = site.browser()
    log_in(browser, "bob")
    refused = post(browser, "/account/email", email="ADA@example.com")
    assert refused.status_code == 409
    assert b"belongs to another account" in refused.data
    malformed = post(browser, "/account/email", email="not an address")
    assert malformed.status_code == 422


def test_the_address_change_asks_for_the_password_again_after_a_while(site: Site) -> None:
    add_user(site.app, "ada")
    browser = site.browser()
    log_in(browser, "ada")
    with site.app.app_context():
        session = wiring.orm_session()
        session.execute(
            update(Session).values(authenticated_at=datetime.now(UTC) - timedelta(hours=1))
        )
        session.commit()
    asked = post(browser, "/account/email", email="ada@example.com")
    assert asked.status_code == 303 and "/account/confirm" in asked.headers["Location"]


def test_signup_takes_an_address_and_the_cli_sets_one_verified(site: Site, runner: Any) -> None:
    browser = site.browser()
    made = post(browser, "/signup", username="ada", password=GOOD_PASSWORD, email="ada@example.com")
    assert made.status_code == 303
    (text,) = site.deliver(1)
    assert "ada@example.com" in text and "/verify-email/" in text
    refused = post(
        site.browser(), "/signup", username="eve", password=GOOD_PASSWORD, email="bad address"
    )
    assert refused.status_code == 422
    added = run_cli(
        runner,
        "users",
        "add",
        "bob",
        "--email",
        "Bob@Example.com",
        "--password-stdin",
        input=GOOD_PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "with the verified address Bob@Example.com" in added.stdout
    with site.app.app_context():
        # The refused address left no account behind.
        with pytest.raises(UnknownUser):
            wiring.operator().find("eve")
        bob = wiring.addresses().of(wiring.operator().find("bob").id)
        assert bob is not None and bob.verified_at is not None
    taken = run_cli(
        runner,
        "users",
        "add",
        "carol",
        "--email",
        "bob@example.com",
        "--password-stdin",
        input=GOOD_PASSWORD + "\n",
    )
    assert taken.exit_code == 1 and "belongs to another account" in taken.stderr


def test_forgot_password_answers_alike_and_the_link_works_once(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    browser = site.browser()
    known = post(browser, "/forgot", email="ada@example.com")
    unknown = post(browser, "/forgot", email="nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.data.replace(b"ada@example.com", b"X") == unknown.data.replace(
        b"nobody@example.com", b"X"
    )
    (text,) = site.deliver(1)
    assert "Hello ada" in text and "works once, for 1 hour" in text
    assert site.server.inbox.received[0].recipients == ["ada@example.com"]
    link = site.last_link("reset")
    assert b"Choose a new password" in browser.get(link).data
    weak = post(browser, link, new_password="password")
    assert weak.status_code == 422
    done = post(browser, link, new_password=NEW_PASSWORD)
    assert done.headers["Location"] == "/?done=reset"
    assert post(browser, link, new_password=NEW_PASSWORD).status_code == 410
    assert log_in(site.browser(), "ada", NEW_PASSWORD).headers["Location"].endswith("/yup")
    assert events(site.app, EventKind.PASSWORD_RESET) == 1


def test_a_reset_ends_every_session_and_token(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    other = site.browser()
    log_in(other, "ada")
    assert other.get("/account").status_code == 200
    post(site.browser(), "/forgot", email="ada@example.com")
    # The new browser's notice, and the reset.
    site.deliver(2)
    post(site.browser(), site.last_link("reset"), new_password=NEW_PASSWORD)
    assert other.get("/account").status_code == 302


def test_a_reset_link_dies_with_a_password_change_and_with_time(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    browser = site.browser()
    post(browser, "/forgot", email="ada@example.com")
    site.deliver(1)
    first = site.last_link("reset")
    with site.app.app_context():
        operator = wiring.operator()
        operator.set_password(operator.find("ada"), NEW_PASSWORD, datetime.now(UTC))
    assert browser.get(first).status_code == 410
    post(browser, "/forgot", email="ada@example.com")
    site.deliver(2)
    second = site.last_link("reset")
    with site.app.app_context():
        session = wiring.orm_session()
        session.execute(update(MailToken).values(expires_at=datetime.now(UTC)))
        session.commit()
    assert browser.get(second).status_code == 410


def test_reset_links_use_the_public_url_whatever_the_host_header(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    forged = site.app.test_client().post(
        "/forgot",
        data={"email": "ada@example.com"},
        headers={**SAME_ORIGIN, "Host": "evil.example"},
    )
    assert forged.status_code == 400
    post(site.browser(), "/forgot", email="ada@example.com")
    (text,) = site.deliver(1)
    assert "evil.example" not in text and f"{PORTAL_URL}/reset/" in text


def test_the_api_resets_a_password(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    api = site.browser()
    for address in ("ada@example.com", "nobody@example.com"):
        asked = api.post("/api/v1/password-resets", json={"email": address})
        assert asked.status_code == 202 and asked.data == b""
    site.deliver(1)
    token = site.last_link("reset").rsplit("/", 1)[1]
    done = api.post(f"/api/v1/password-resets/{token}", json={"new_password": NEW_PASSWORD})
    assert done.status_code == 204
    again = api.post(f"/api/v1/password-resets/{token}", json={"new_password": NEW_PASSWORD})
    assert again.status_code == 410
    assert again.json["code"] == "reset_token_invalid"
    assert again.headers["Content-Type"] == "application/problem+json"


def test_reset_requests_are_throttled_per_address(site: Site) -> None:
    answers = [
        post(site.browser(), "/forgot", email="ada@example.com").status_code for _ in range(6)
    ]
    assert answers == [200] * 5 + [429]


def test_a_new_browser_is_told_and_this_wasnt_me_ends_everything(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    intruder = site.browser()
    log_in(intruder, "ada")
    (text,) = site.deliver(1)
    assert "A new sign-in" in text or "browser it had not seen" in text
    # The same browser again, with its device cookie: no second notice.
    log_in(intruder, "ada")
    link = site.last_link("not-me")
    owner = site.browser()
    assert b"End everything" in owner.get(link).data
    assert intruder.get("/account").status_code == 200
    done = post(owner, link)
    assert b"Your account is safe again" in done.data
    assert intruder.get("/account").status_code == 302
    assert log_in(site.browser(), "ada").headers["Location"].startswith("/nope")
    assert events(site.app, EventKind.NOT_ME) == 1
    post(owner, "/forgot", email="ada@example.com")
    site.deliver(2)
    post(owner, site.last_link("reset"), new_password=NEW_PASSWORD)
    assert log_in(site.browser(), "ada", NEW_PASSWORD).headers["Location"].endswith("/yup")
    assert len(site.server.inbox.received) == 2


def test_the_security_centre_lists_sessions_and_sign_ins_and_ends_one(site: Site) -> None:
    add_user(site.app, "ada")
    phone, laptop = site.browser(), site.browser()
    log_in(phone, "ada")
    log_in(laptop, "ada")
    page = laptop.get("/account").data
    assert page.count(b'aria-label="End session') == 2
    assert b"This browser" in page and b"Recent sign-ins" in page
    with site.app.app_context():
        sessions = wiring.sessions().of_user(1)
    phones = [s.id for s in sessions if s.id != max(s.id for s in sessions)]
    ended = post(laptop, f"/account/sessions/{phones[0]}/end")
    assert ended.status_code == 303
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 200


def test_email_pages_are_404_while_email_is_off(client: FlaskClient, runner: Any) -> None:
    assert client.get("/forgot").status_code == 404
    assert client.post("/api/v1/password-resets", json={"email": "a@b.example"}).status_code == 404
    result = run_cli(runner, "mail", "send")
    assert result.exit_code == 1


def test_a_reset_request_says_nothing_by_its_answer_or_its_time(site: Site) -> None:
    """Known and unknown addresses, one request at a time, interleaved: alike in body and time.

    The times are compared by rank (the chance that a known address's request is the slower of
    a pair), which a constant difference in work would push towards 1, and which noise from the
    machine, striking both alike, leaves near one half.
    """
    count = 40
    for n in range(count):
        with_address(site, f"user{n}", f"user{n}@example.com")
    api = site.browser()
    known: list[float] = []
    unknown: list[float] = []
    answers = set()
    for n in range(count):
        for address, times in (
            (f"user{n}@example.com", known),
            (f"nobody{n}@example.com", unknown),
        ):
            start = time.perf_counter()
            # From addresses of their own, as a crowd would: one client gets 20 an hour.
            answer = api.post(
                "/api/v1/password-resets",
                json={"email": address},
                environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
            )
            times.append(time.perf_counter() - start)
            answers.add((answer.status_code, answer.data, answer.headers.get("Content-Type")))
    assert len(answers) == 1 and next(iter(answers))[:2] == (202, b""), answers
    slower = sum(k > u for k in known for u in unknown) / (count * count)
    assert 0.2 < slower < 0.8, f"known slower in {slower:.0%} of pairs"


def test_a_reset_goes_to_the_address_as_verified_not_as_typed(site: Site) -> None:
    with_address(site, "kate", "kate@example.com")
    for typed in ("KATE@Example.COM", "\u212aate@example.com"):
        post(site.browser(), "/forgot", email=typed)
    site.deliver(2)
    received = site.server.inbox.received
    assert len(received) == 2
    assert all(found.recipients == ["kate@example.com"] for found in received)
    assert all(found.message["To"] == "kate@example.com" for found in received)


def test_a_broken_mail_template_is_one_line_at_start(
    app_factory: Callable[..., Flask], mail_server: SmtpServer, instance: Path
) -> None:
    folder = instance / "templates" / "mail"
    folder.mkdir(parents=True)
    (folder / "test.txt").write_text("Subject: hi\n\nHello {{")
    with pytest.raises(ConfigError, match=r"^templates/mail/test.txt: "):
        app_factory(
            email="optional",
            smtp_url=mail_server.url(),
            mail_from="yupnope <login@example.com>",
            public_url=PORTAL_URL,
        )


def test_a_reset_leaves_the_second_factor_to_be_asked(site: Site) -> None:
    with_address(site, "ada", "ada@example.com")
    api = site.browser()
    token = api.post("/api/v1/sessions", json={"username": "ada", "password": GOOD_PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json['token']}"}
    secret = api.post("/api/v1/me/totp", headers=bearer).json["secret"]
    code = pyotp.TOTP(secret).now()
    confirmed = api.post("/api/v1/me/totp/confirm", json={"code": code}, headers=bearer)
    assert confirmed.status_code == 200
    post(site.browser(), "/forgot", email="ada@example.com")
    # The API login's notice (no device value), and the reset.
    site.deliver(2)
    post(site.browser(), site.last_link("reset"), new_password=NEW_PASSWORD)
    assert log_in(site.browser(), "ada", NEW_PASSWORD).headers["Location"] == (
        "/login/second-factor"
    )
