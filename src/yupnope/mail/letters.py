"""Write letters from templates: a plain-text part and an HTML part, the subject on top.

``templates/mail/<letter>.txt`` starts with ``Subject: …`` and a blank line; ``<letter>.html``
is the same letter for mail programs that show HTML. A file of the same name in
``<instance>/templates/mail/`` replaces the one shipped, as the pages' templates are replaced.
Jinja escapes everything it puts in the HTML part.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    TemplateError,
    select_autoescape,
)

from ..errors import ConfigError


class Letter(StrEnum):
    """Name each letter yupnope writes, which is its templates' name."""

    VERIFY = "verify"
    ADDRESS_CHANGED = "address_changed"
    RESET = "reset"
    NEW_SIGN_IN = "new_sign_in"
    TEST = "test"


class Letters:
    """Write letters from the shipped templates or the instance's own."""

    def __init__(self, instance_path: str, public_url: str, mail_from: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.mail_from = mail_from
        overrides = FileSystemLoader(str(Path(instance_path) / "templates" / "mail"))
        self.templates = Environment(
            loader=ChoiceLoader([overrides, PackageLoader("yupnope", "templates/mail")]),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=True,
        )
        # Compiled here, once, in the thread that builds the app: Jinja compiles a template
        # to Python with ast, and CPython 3.11's ast is not safe to run in two threads at once
        # (gh-106905), which the sender's thread and a request's rendering a page would do.
        for name in (
            "_layout.html",
            *(f"{letter.value}.{kind}" for letter in Letter for kind in ("txt", "html")),
        ):
            try:
                self.templates.get_template(name)
            except TemplateError as exc:
                raise ConfigError(f"templates/mail/{name}: {exc}") from None

    def write(self, letter: Letter, recipient: str, **context: Any) -> EmailMessage:
        """Return ``letter`` to ``recipient``, ready to send; ``context`` fills its blanks."""
        values = {"public_url": self.public_url, **context}
        text = self.templates.get_template(f"{letter.value}.txt").render(values)
        head, _, body = text.partition("\n\n")
        if not head.startswith("Subject: "):
            raise ValueError(f"templates/mail/{letter.value}.txt must start with 'Subject: '")
        html = self.templates.get_template(f"{letter.value}.html").render(values)
        message = EmailMessage()
        message["Subject"] = head.removeprefix("Subject: ").strip()
        message["From"] = self.mail_from
        message["To"] = recipient
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.mail_from.rpartition("@")[2].strip(">"))
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        message.add_alternative(html, subtype="html")
        return message
