"""Give the operator the ``yupnope`` command: serve, users, groups, the audit log, the database
(migrations, a copy into another), and the access rules explained.

Every refusal ends with one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from . import audit, db, groups, mail, oidc, rules, serve, users
from .group import cli

__all__ = ["audit", "cli", "db", "groups", "mail", "oidc", "rules", "serve", "users"]
