"""Throttle password guessing: per account, per client address, per device, and overall.

Every attempt is counted before its password is hashed, in one transaction that also checks the
limits: an attempt over any limit is taken back (so it is not counted, and it is answered without
hashing), and a concurrent burst can never slip more attempts through than the budget, since
each count is one atomic step. A success takes its attempt back. The counters live in the
database, or in Redis when one is configured (see counters.py).

- Account: a few failures free, then a wait that doubles with each failure (progressive delay),
  and at most ``account_limit`` in a long window (NIST SP 800-63B 5.2.2).
- Address: at most ``address_limit`` failures per window from one address (an IPv6 /64), which
  stops credential stuffing across many accounts.
- Global: at most ``global_limit`` failures per window from clients without a device value.
- Device: a client that logged in to the account before holds a signed device value (a
  browser's cookie, an API client's ``device``); with it, an attempt is counted on that device's
  own budget (the account's waits and limit) instead of the account's, address's and global
  one, so an attacker cannot lock the owner out (OWASP, "Slow Down Online Guessing Attacks with
  Device Cookies").

Names that match no account are counted exactly like names that do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ..errors import Throttled
from ..metrics import OFF, Metrics
from .counters import Count, Counters, Keeper
from .policy import (
    ACCOUNT,
    ADDRESS,
    CEREMONIES_IN_ALL,
    CEREMONIES_PER_ADDRESS,
    CEREMONY,
    CLIENT,
    CONFIRMATION,
    DEVICE,
    FACTOR_DEVICE,
    GLOBAL,
    REFUSAL,
    RESET,
    RESET_CLIENT,
    RESETS_PER_CLIENT,
    RESETS_PER_EMAIL,
    SECOND_FACTOR,
    SIGNUP,
    Limit,
    Policy,
    account_key,
    address_key,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Counted:
    """Name the counters one admitted attempt was added to, to take it back on success."""

    #: The account's, device's or confirmations' own counter; None for a malformed attempt.
    personal: tuple[str, str] | None
    shared: tuple[tuple[str, str], ...]
    #: The wait this attempt set on the personal counter, and the one it replaced.
    blocked: datetime | None = None
    blocked_before: datetime | None = None


#: The scopes of an account's own counters, which unlocking it clears.
PERSONAL_SCOPES = (ACCOUNT, CONFIRMATION, SECOND_FACTOR)


class Throttle:
    """Admit or refuse attempts against the policy, with counters kept by ``counters``."""

    def __init__(self, counters: Keeper, policy: Policy, metrics: Metrics = OFF) -> None:
        self.counters = counters
        self.policy = policy
        self.metrics = metrics

    def admit_login(
        self, username_key: str, address: str | None, device: str | None, now: datetime
    ) -> Counted:
        """Count a login attempt, or raise Throttled without counting it.

        ``device`` is the id from a valid device value for this very name, or None.
        """
        if device is not None:
            personal = (DEVICE, device)
            shared: tuple[tuple[str, str], ...] = ()
        else:
            personal = (ACCOUNT, account_key(username_key))
            shared = ((ADDRESS, address_key(address)), (GLOBAL, "*"))
        return self._admit(lambda counters: self._count_login(counters, personal, shared, now))

    def admit_malformed(self, address: str | None, now: datetime) -> Counted:
        """Count an attempt whose name or password cannot be one, or raise Throttled.

        It names no account, so only the address's and the global budgets count it: a client
        cannot send malformed attempts faster than wrong ones.
        """
        shared = ((ADDRESS, address_key(address)), (GLOBAL, "*"))
        return self._admit(lambda counters: self._count_login(counters, None, shared, now))

    def admit_confirmation(self, username_key: str, now: datetime) -> Counted:
        """Count an owner's password confirmation on a counter of its own, or raise Throttled.

        The confirmations of one account (change password, delete account) wait and are
        limited like its logins, but apart from them: strangers failing at the login form
        cannot stop the owner from changing their password, and a stolen session guessing
        the current one gets no more tries than a stranger would. The address and global
        budgets, meant for guessing from many places, stay out of it.
        """
        personal = (CONFIRMATION, account_key(username_key))
        return self._admit(lambda counters: self._count_login(counters, personal, (), now))

    def admit_second_factor(self, username_key: str, device: str | None, now: datetime) -> Counted:
        """Count a code typed at a login's second step, or raise Throttled without counting it.

        Whoever gets this far knows the password, so the codes of one account wait and are
        limited like its logins, on counters of their own. A client that holds a valid device
        value for the account (``device``, its id) is counted on that device's own counter
        instead: a stranger who has the password and guesses codes cannot lock the owner out.
        """
        if device is not None:
            personal = (FACTOR_DEVICE, device)
        else:
            personal = (SECOND_FACTOR, account_key(username_key))
        return self._admit(lambda counters: self._count_login(counters, personal, (), now))

    def admit_client(self, client_id: str, address: str | None, now: datetime) -> Counted:
        """Count an app's client authentication with a secret, or raise Throttled.

        Counted on the client's own counter at this address, with the accounts' waits, and on
        the address's budget of failures: a stranger trying secrets for a client from elsewhere
        cannot lock the app's own server out.
        """
        personal = (CLIENT, account_key(f"{client_id}\n{address_key(address)}"))
        shared = ((ADDRESS, address_key(address)),)
        return self._admit(lambda counters: self._count_login(counters, personal, shared, now))

    def _count_login(
        self,
        counters: Counters,
        personal: tuple[str, str] | None,
        shared: tuple[tuple[str, str], ...],
        now: datetime,
    ) -> Counted:
        limits = {ADDRESS: self.policy.address, GLOBAL: self.policy.global_}
        backoff = self.policy.backoff
        waits: list[tuple[float, tuple[str, str]]] = []
        count = None
        if personal is not None:
            # The hit sets this attempt's wait along with its count, so no concurrent attempt
            # can come between them; a refusal below takes both back.
            count = counters.hit(*personal, now, now - self.policy.account.window, backoff)
            waits.append((self._personal_wait(count, now), personal))
        for scope, key in shared:
            limit = limits[scope]
            hit = counters.hit(scope, key, now, now - limit.window)
            if hit.count > limit.count:
                waits.append((_window_left(hit, limit, now), (scope, key)))
        retry_after, refusing = max(waits, default=(0.0, ("", "")))
        if retry_after > 0:
            # Leaving the transaction by an exception takes every hit back: refused, not counted.
            raise Throttled(math.ceil(retry_after), refusing)
        if count is None:
            return Counted(personal, shared)
        delay = backoff.wait(count.count)
        blocked = None if delay is None else now + delay
        return Counted(personal, shared, blocked, count.blocked_until)

    def first_refusal(self, refused: Throttled, now: datetime) -> bool:
        """Count a refusal against its counter; return whether it is the first of its window.

        The event log records only that first one, so a client repeating a refused attempt
        adds one row per counter and window, not one per attempt.
        """
        if refused.counter is None:
            return True
        scope, key = refused.counter
        window = self.policy.refusal_window(scope)
        return self.counters.transaction(
            lambda counters: counters.hit(REFUSAL, f"{scope}:{key}", now, now - window).count == 1
        )

    def succeeded(self, counted: Counted) -> None:
        """Forget the personal failures after a success and take the shared attempt back."""

        def forget(counters: Counters) -> None:
            if counted.personal is not None:
                counters.clear(*counted.personal)
            for scope, key in counted.shared:
                counters.refund(scope, key)

        # Joins a login's last write, so that one commit holds the login and its settling.
        self.counters.transaction(forget, join=True)

    def refund(self, counted: Counted) -> None:
        """Take back an admitted attempt that was never checked (no hashing slot came free).

        The wait it set goes too, but only if no later attempt has set another since: a flood
        of unchecked attempts must not erase the waits of checked ones.
        """

        def give_back(counters: Counters) -> None:
            for scope, key in counted.shared:
                counters.refund(scope, key)
            if counted.personal is not None:
                counters.refund(*counted.personal)
            if counted.personal is not None and counted.blocked is not None:
                counters.unblock(
                    *counted.personal, set_at=counted.blocked, back_to=counted.blocked_before
                )

        self.counters.transaction(give_back)

    def admit_ceremony(self, address: str | None, now: datetime) -> None:
        """Count a passkey challenge handed out without a sign-in, or raise Throttled.

        Not a guess: a challenge proves nothing by itself. It is counted because each one is a
        row until it expires (policy.CEREMONIES_PER_ADDRESS says why).
        """
        limits = ((address_key(address), CEREMONIES_PER_ADDRESS), ("*", CEREMONIES_IN_ALL))
        self._count_each([(CEREMONY, key, limit) for key, limit in limits], now)

    def admit_reset(self, email: str, address: str | None, now: datetime) -> None:
        """Count a password reset asked for ``email`` from ``address``, or raise Throttled.

        Counted the same whether or not the email is any account's, so the answer says nothing.
        """
        limits = [
            (RESET, account_key(email.lower()), RESETS_PER_EMAIL),
            (RESET_CLIENT, address_key(address), RESETS_PER_CLIENT),
        ]
        self._count_each(limits, now)

    def _count_each(self, limits: list[tuple[str, str, Limit]], now: datetime) -> None:
        """Count one on each counter, or raise Throttled (none counted) if one is over."""

        def count(counters: Counters) -> None:
            for scope, key, limit in limits:
                hit = counters.hit(scope, key, now, now - limit.window)
                if hit.count > limit.count:
                    raise Throttled(math.ceil(_window_left(hit, limit, now)), (scope, key))

        self._admit(count)

    def admit_signup(self, address: str | None, now: datetime) -> None:
        """Count a sign-up attempt from ``address``, or raise Throttled without counting it."""
        self._count_each([(SIGNUP, address_key(address), self.policy.signup)], now)

    def unlock(self, username_key: str) -> bool:
        """Clear an account's login, confirmation and second-step counters; say if one was set."""
        key = account_key(username_key)
        return self.counters.transaction(
            lambda counters: sum(counters.clear(scope, key) for scope in PERSONAL_SCOPES) > 0
        )

    def _admit(self, count: Callable[[Counters], T]) -> T:
        """Return ``count(counters)`` in one transaction; a refusal it raises is counted too."""
        try:
            return self.counters.transaction(count)
        except Throttled as refused:
            self.metrics.throttled(refused.counter[0] if refused.counter else "unknown")
            raise

    def _personal_wait(self, state: Count, now: datetime) -> float:
        """Return how long the account (or device) must still wait, counting this attempt."""
        if state.waiting(now) and state.blocked_until is not None:
            return _seconds(state.blocked_until - now)
        if state.count > self.policy.account.count:
            return _window_left(state, self.policy.account, now)
        return 0.0


def _window_left(state: Count, limit: Limit, now: datetime) -> float:
    """Return the seconds until the window of a counter over ``limit`` ends."""
    return _seconds(state.window_start + limit.window - now)


def _seconds(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0)
