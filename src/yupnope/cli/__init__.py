"""Give the operator the ``yupnope`` command: serve, manage users, read the audit log, migrate,
explain the access rules.

Every refusal ends with one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from . import audit, rules, serve, users
from .group import cli

__all__ = ["audit", "cli", "rules", "serve", "users"]
