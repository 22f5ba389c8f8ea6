"""Check and drive mail from the command line: ``yupnope mail test | send``."""

from __future__ import annotations

import smtplib

import click

from .. import wiring
from ..errors import ConfigError
from ..mail.letters import Letter, Letters
from ..mail.sender import describe
from ..mail.smtp import MailServer
from .group import cli, one_line_errors, open_app


@cli.group()
def mail() -> None:
    """Send a test mail; send what is queued now."""


@mail.command("test")
@click.argument("address")
@one_line_errors
def mail_test(address: str) -> None:
    """Send a test mail to ADDRESS at once, through YUPNOPE_SMTP_URL; say what went wrong."""
    with open_app():
        settings = wiring.get().settings
        if not settings.smtp_url or not settings.mail_from:
            raise ConfigError("set YUPNOPE_SMTP_URL and YUPNOPE_MAIL_FROM to send mail")
        server = MailServer.of(settings.smtp_url)
        origin = settings.public_origin or "(no YUPNOPE_PUBLIC_URL)"
        letters = Letters(settings.instance_path, origin, settings.mail_from)
        try:
            server.send(letters.write(Letter.TEST, address))
        except (OSError, smtplib.SMTPException) as exc:
            raise click.ClickException(
                f"the mail server at {server.host}:{server.port} did not take it: {describe(exc)}"
            ) from exc
    click.echo(f"Sent a test mail to {address} through {server.host}:{server.port}.")


@mail.command("send")
@one_line_errors
def mail_send() -> None:
    """Send the queued mail that is due now (the server's workers do it by themselves)."""
    with open_app():
        postman = wiring.get().postman
        if postman is None:
            raise ConfigError("YUPNOPE_EMAIL is off: there is no mail to send")
        sent = postman.send_due()
    click.echo(f"Sent {sent} mail{'s' if sent != 1 else ''}.")
