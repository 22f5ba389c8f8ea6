"""Decide whether one request may pass by the first access rule that takes it, and explain why.

A rule takes a request when its domain covers the host, one of its resources (if it has any)
is found in the path, its methods (if any) hold the method, and its subjects (if any) name
the caller. A signed-in caller is decided by the first rule that takes them: ``bypass`` and
``signed_in`` allow, ``deny`` denies, ``two_factor`` allows a caller whose login proved a
second factor and asks anyone else to sign in with one.

An anonymous visitor may be anyone once signed in, so a rule with subjects is read as "this
rule might be for you":
- ``signed_in`` (or ``two_factor``) for some subjects answers "sign in first" at once: signing
  in may let them in, and nothing may let them in without.
- ``deny`` for some subjects is passed over, noting it: signing in as anyone else may still
  let them in, so the rules below decide. If they end in "deny" for everyone, the visitor is
  denied; if they end in a ``bypass`` (or a default of ``bypass``), the visitor must sign in
  first all the same, since that bypass is for everyone but the subjects denied above and an
  anonymous visitor may be one of those.
So a visitor is never told "forbidden" while signing in could let them in, and never let in
by a rule that does not apply to every signed-in user as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from . import targets
from .rules import AccessRules, Policy, Rule, Subject


class Outcome(StrEnum):
    """Name what the forward-auth endpoint answers the proxy."""

    #: Let the request through.
    ALLOW = "allow"
    #: The request needs a signed-in user: the endpoint answers 401, or redirects to log in.
    SIGN_IN = "sign_in"
    #: Refuse the request: the endpoint answers 403.
    DENY = "deny"


@dataclass(frozen=True)
class Request:
    """Carry what the proxy forwards of a request, as it forwards it.

    ``host`` as in the ``Host`` header (a port is ignored, the case too); ``path`` as the client
    sent it, percent-escapes and all, without the query (one left on is cut off: rules never
    see the query). ``targets`` puts both in the form the rules compare.
    """

    method: str
    host: str
    path: str


@dataclass(frozen=True)
class Caller:
    """Carry a signed-in user: the name as shown, the key the login finds it under, its groups.

    ``two_factor`` says whether the credential proved a second factor (a login that asked for
    one), which the ``two_factor`` policy asks for.
    """

    username: str
    key: str
    groups: frozenset[str] = frozenset()
    two_factor: bool = False


@dataclass(frozen=True)
class Decision:
    """Say what to answer, which rule decided (numbered from 1; None for the default), and why."""

    outcome: Outcome
    rule: int | None
    #: The deciding rule on one line (``Rule.describe``), or the default policy.
    description: str
    reason: str


class Verdict(StrEnum):
    """Say what one rule did with the request, for ``explain``."""

    MISSES = "no"
    PASSED_OVER = "passed over"
    DECIDES = "decides"
    NOT_REACHED = "not reached"


@dataclass(frozen=True)
class Step:
    """Say what one rule did with the request, and why."""

    rule: Rule
    verdict: Verdict
    why: str


@dataclass(frozen=True)
class Explanation:
    """Carry the request as the rules saw it, each rule's step in order, and the decision."""

    method: str
    host: str | None
    path: str
    steps: tuple[Step, ...]
    decision: Decision


@dataclass(frozen=True)
class _Fit:
    """Say what of a rule took the request: the domain, the resource, the subject (if any)."""

    domain: str
    resource: re.Pattern[str] | None
    subject: Subject | None


def decide(rules: AccessRules, request: Request, who: Caller | None) -> Decision:
    """Return the decision on ``request`` by ``who`` (None: an anonymous visitor)."""
    return _walk(rules, request, who, None)


def explain(rules: AccessRules, request: Request, who: Caller | None) -> Explanation:
    """Return, for ``yupnope rules explain``, each rule with why it took the request or not."""
    steps: list[Step] = []
    decision = _walk(rules, request, who, steps)
    decided = f"{decision.description} decided first"
    steps += [Step(rule, Verdict.NOT_REACHED, decided) for rule in rules.rules[len(steps) :]]
    host = targets.host_of(request.host)
    path = targets.path_of(request.path)
    return Explanation(request.method.upper(), host, path, tuple(steps), decision)


def _walk(
    rules: AccessRules, request: Request, who: Caller | None, steps: list[Step] | None
) -> Decision:
    """Return the decision, adding each rule's step to ``steps`` up to the deciding one."""
    host = targets.host_of(request.host)
    method = request.method.upper()
    path = targets.path_of(request.path)
    unclear = "the host is no host name" if host is None else targets.ambiguity(request.path)
    if unclear:
        # What the rules would read and what the app will read may differ: refuse, whatever
        # the default, rather than guess which the app serves (a bypass default included).
        return Decision(Outcome.DENY, None, "no rule", f"{unclear}, so it is refused")
    denied_some: Rule | None = None
    for rule in rules.rules:
        fit = _fit(rule, host, method, path, who)
        if not isinstance(fit, _Fit):
            if steps is not None:
                steps.append(Step(rule, Verdict.MISSES, fit))
            continue
        if who is None and rule.subjects and rule.policy is Policy.DENY:
            denied_some = denied_some or rule
            if steps is not None:
                why = f"it denies only {_subjects(rule)}; the rules below decide for the rest"
                steps.append(Step(rule, Verdict.PASSED_OVER, why))
            continue
        decision = _ruling(rule.policy, rule, who, denied_some, fit)
        if steps is not None:
            steps.append(Step(rule, Verdict.DECIDES, _why_so(rule, fit, host, path, method, who)))
        return decision
    return _ruling(rules.default_policy, None, who, denied_some, None)


def _fit(rule: Rule, host: str | None, method: str, path: str, who: Caller | None) -> _Fit | str:
    """Return what of ``rule`` takes the request, or why it does not take it."""
    if host is None:
        return "the request names no host that a rule could cover"
    domain = next((d for d in rule.domains if targets.covers(d, host)), None)
    if domain is None:
        return f"the host {host} is not {_listed(rule.domains)}"
    resource = next((r for r in rule.resources if r.search(path)), None)
    if rule.resources and resource is None:
        return f"the path {path} matches none of {_listed(p.pattern for p in rule.resources)}"
    if rule.methods and method not in rule.methods:
        return f"the method {method} is not {_listed(rule.methods)}"
    subject = None
    if who is not None and rule.subjects:
        subject = next((s for s in rule.subjects if _names(s, who)), None)
        if subject is None:
            return f"{who.username} is not {_subjects(rule)}"
    return _Fit(domain, resource, subject)


def _names(subject: Subject, who: Caller) -> bool:
    """Return whether ``subject`` names ``who``: their key, or one of their groups."""
    if subject.kind == "user":
        return subject.key == who.key
    return subject.key in who.groups


def _ruling(
    policy: Policy,
    rule: Rule | None,
    who: Caller | None,
    denied_some: Rule | None,
    fit: _Fit | None,
) -> Decision:
    """Return the decision of ``policy``: ``rule``'s, or the default's when ``rule`` is None."""
    if rule is None:
        number, description = None, f"the default policy ({policy})"
        name = "no rule decides, and the default policy"
    else:
        number, description, name = rule.number, rule.describe(), f"rule {rule.number}"
    subject = f" ({fit.subject.text})" if fit and fit.subject else ""
    if policy is Policy.DENY:
        whom = f" {who.username}{subject}" if who else ""
        return Decision(Outcome.DENY, number, description, f"{name} denies{whom}")
    if who is not None and policy is Policy.TWO_FACTOR and not who.two_factor:
        why = f"{name} asks {who.username}{subject} for a second factor: sign in with one"
        return Decision(Outcome.SIGN_IN, number, description, why)
    if who is not None:
        why = f"{name} lets {who.username} in{subject}"
        if policy is Policy.TWO_FACTOR:
            why += " with a second factor"
        return Decision(Outcome.ALLOW, number, description, why)
    if policy in (Policy.SIGNED_IN, Policy.TWO_FACTOR):
        whom = f"only {_subjects(rule)}" if rule and rule.subjects else "signed-in users only"
        how = " with a second factor" if policy is Policy.TWO_FACTOR else ""
        why = f"{name} lets in {whom}{how}: sign in first"
        return Decision(Outcome.SIGN_IN, number, description, why)
    if denied_some is not None:
        why = (
            f"{name} lets anyone through, but {denied_some.describe()} denies "
            f"{_subjects(denied_some)}: sign in first, to show you are none of them"
        )
        return Decision(Outcome.SIGN_IN, number, description, why)
    return Decision(Outcome.ALLOW, number, description, f"{name} lets anyone through")


def _why_so(
    rule: Rule, fit: _Fit, host: str | None, path: str, method: str, who: Caller | None
) -> str:
    """Return what of ``rule`` took the request, for ``explain``."""
    parts = [f"the host {host} is {fit.domain}"]
    if fit.resource is not None:
        parts.append(f"the path {path} matches {fit.resource.pattern}")
    if rule.methods:
        parts.append(f"{method} is one of {', '.join(rule.methods)}")
    if who is not None and fit.subject is not None:
        parts.append(f"{who.username} is {fit.subject.text}")
    return ", ".join(parts)


def _subjects(rule: Rule) -> str:
    """Return the subjects of ``rule`` as written, for a sentence."""
    return _listed(subject.text for subject in rule.subjects)


def _listed(items: Iterable[str]) -> str:
    """Return ``items`` as ``a``, ``a or b``, ``a, b or c``."""
    texts = list(items)
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"
