"""Give the operator the ``yupnope`` command: serve, users, groups, the audit log, migrations,
and the access rules explained.

Every refusal ends with one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from . import audit, groups, mail, oidc, rules, serve, users
from .group import cli

__all__ = ["audit", "cli", "groups", "mail", "oidc", "rules", "serve", "users"]
