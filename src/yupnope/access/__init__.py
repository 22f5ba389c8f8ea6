"""Decide who may reach the apps behind a forward-auth proxy, by the rules of ``[access]``.

``rules`` reads the table of yupnope.toml that ``config`` loads into ``Settings.access``;
``decision`` walks the rules for one request and one caller (``decide``), or shows the walk
(``explain``); ``targets`` puts hosts and paths in the one form the rules compare. No Flask
and no database here: the forward-auth endpoints and ``yupnope rules explain`` call in.
"""

from __future__ import annotations

from .decision import (
    Caller,
    Decision,
    Explanation,
    Outcome,
    Request,
    Step,
    Verdict,
    decide,
    explain,
)
from .rules import AccessRules, Policy, Rule, Subject, parse

__all__ = [
    "AccessRules",
    "Caller",
    "Decision",
    "Explanation",
    "Outcome",
    "Policy",
    "Request",
    "Rule",
    "Step",
    "Subject",
    "Verdict",
    "decide",
    "explain",
    "parse",
]
