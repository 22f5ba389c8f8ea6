"""Write every log line in one form, text or JSON, with its time, level, logger and request id.

The form is the LOG_FORMAT setting. ``serve`` sets it up before anything logs, for granian's
own loggers and its access log too (``granian_config``, which granian applies again in each
worker); ``create_app`` sets it up only where nothing else has (a bare ``yupnope`` command,
another WSGI server's process with no logging of its own), so a host's own logging is left
alone. Python's last-resort handler, which printed yupnope's warnings before, shows neither
the time nor the level, and nothing below WARNING.

What a line may say is the caller's affair: no caller logs a password, a token, a cookie or
an ``Authorization`` header. The access log shows the path without its query string, and every
line the token of a mailed link in a path as ``<token>`` (``/reset/<token>``): the link opens an
account.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

#: The request this thread is answering, by its id: set and reset by web/request_ids.py.
request_id: ContextVar[str | None] = ContextVar("yupnope_request_id", default=None)

#: yupnope's loggers log from this level on: INFO says what an operator should know
#: (Redis answering again), DEBUG would be ours to add where needed.
LEVEL = logging.INFO

#: granian's loggers: its own, and the access log's, one line per request.
GRANIAN_LOGGERS = ("_granian", "granian.access")

#: The fields of granian's access log kept in a JSON line (granian/log.py's record args).
ACCESS_FIELDS = ("addr", "method", "path", "status", "dt_ms")

#: A path whose last part is a mailed link's token (web/mail_pages, web/mail_api), alone (the
#: access log's) or within a line (Flask's "Exception on /reset/… [POST]", an outage's line).
TOKEN_PATHS = re.compile(r"(/reset/|/verify-email/|/not-me/|/api/v1/password-resets/)[^/\s'\"?\]]+")


class Formatter(logging.Formatter):
    """Format a record as one line: ``time level logger [request id] message``, or as JSON."""

    def __init__(self, json_lines: bool = False) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        access = None
        if record.name == "granian.access" and isinstance(record.args, dict):
            path = TOKEN_PATHS.sub(r"\1<token>", str(record.args.get("path", "")))
            access = record.args = {**record.args, "path": path}
        message = TOKEN_PATHS.sub(r"\1<token>", record.getMessage())
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        request = request_id.get()
        if not self.json_lines:
            where = f" [{request}]" if request else ""
            return f"{when} {record.levelname} {record.name}{where} {message}"
        line: dict[str, Any] = {
            "time": when,
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if request:
            line["request_id"] = request
        if access is not None:
            line.update((name, access[name]) for name in ACCESS_FIELDS if name in access)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write formatted lines to a stream: the handler ``configure`` installs, found again by it."""


def configure(log_format: str, stream: IO[str] | None = None, replace: bool = True) -> None:
    """Send the root logger's lines to ``stream`` (stderr) in ``log_format``; yupnope's at INFO.

    With ``replace`` false, a process whose root logger already has handlers is left as it
    is. A handler this function installed before is replaced, never doubled.
    """
    root = logging.getLogger()
    if not replace and root.handlers:
        return
    for handler in [found for found in root.handlers if isinstance(found, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(Formatter(json_lines=log_format == "json"))
    root.addHandler(handler)
    logging.getLogger("yupnope").setLevel(LEVEL)


def granian_config(log_format: str) -> dict[str, Any]:
    """Return the logging dictConfig granian applies in its main process and each worker.

    Its own loggers and the access log write through the same formatter as yupnope's, on
    stderr; the root logger gets the same handler, so yupnope's lines follow it there.
    """
    formatter = {"()": Formatter, "json_lines": log_format == "json"}
    handler = {"()": _Handler, "formatter": "yupnope", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"yupnope": formatter},
        "handlers": {"yupnope": handler},
        "root": {"handlers": ["yupnope"], "level": "WARNING"},
        "loggers": {
            "yupnope": {"level": logging.getLevelName(LEVEL)},
            **{
                name: {"handlers": ["yupnope"], "level": "INFO", "propagate": False}
                for name in GRANIAN_LOGGERS
            },
        },
    }
