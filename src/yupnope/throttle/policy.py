"""Say what the throttle allows: the limits, the progressive delay, and the counters' keys."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from ..config import Settings

#: The scopes of the counters: what one counts attempts of.
ACCOUNT = "account"
DEVICE = "device"
ADDRESS = "address"
GLOBAL = "global"
SIGNUP = "signup"
CONFIRMATION = "confirmation"
#: A login's second step: an account's codes, and a known device's own budget for them.
SECOND_FACTOR = "second_factor"
FACTOR_DEVICE = "factor_device"
#: An app's client authentications with a secret, one counter per client and address.
CLIENT = "client"
#: Password reset requests: per email address asked for, and per client address.
RESET = "reset"
RESET_CLIENT = "reset_client"
#: Challenges of logins without a password handed out to anonymous visitors: each is a row.
CEREMONY = "ceremony"
#: Refusals already written to the event log, one counter per refusing counter: the log gets
#: one row per counter and window however many attempts are refused.
REFUSAL = "refusal"

#: Doublings of the base wait after which it grows no more: 2**30 base waits is decades already.
MOST_DOUBLINGS = 30


@dataclass(frozen=True)
class Limit:
    """Allow ``count`` attempts per ``window``."""

    count: int
    window: timedelta


#: How many passkey challenges one address, and everyone together, may be handed out without
#: signing in. Each visit to the login page asks for one (the browser's autofill), and each is
#: a row until it expires: the limits bound that table whatever a flood of requests does.
CEREMONIES_PER_ADDRESS = Limit(120, timedelta(minutes=5))
CEREMONIES_IN_ALL = Limit(20_000, timedelta(minutes=5))

#: How many password resets one email address, and one client address, may ask for: each is
#: a mail sent, so the limits keep a stranger from filling a person's inbox or the outbox.
RESETS_PER_EMAIL = Limit(5, timedelta(hours=1))
RESETS_PER_CLIENT = Limit(20, timedelta(hours=1))


@dataclass(frozen=True)
class Backoff:
    """Let ``free`` failures pass, then make each wait ``base``, doubling up to ``longest``."""

    free: int
    base: timedelta
    longest: timedelta

    def wait(self, failures: int) -> timedelta | None:
        """Return the wait after ``failures`` failures, or None while they are still free."""
        beyond = failures - self.free
        if beyond < 0:
            return None
        return min(self.base * (1 << min(beyond, MOST_DOUBLINGS)), self.longest)

    def waits(self) -> list[timedelta]:
        """Return the waits after ``free``, ``free + 1`` … failures, up to the last new one."""
        found = [self.base]
        while len(found) <= MOST_DOUBLINGS and found[-1] < self.longest:
            found.append(self.base * (1 << len(found)))
        return [min(wait, self.longest) for wait in found]


@dataclass(frozen=True)
class Policy:
    """Carry every throttle setting."""

    free_failures: int
    base_delay: timedelta
    max_delay: timedelta
    account: Limit
    address: Limit
    global_: Limit
    signup: Limit

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """Return the policy the settings describe."""

        def per(count: int, seconds: int) -> Limit:
            return Limit(count, timedelta(seconds=seconds))

        return cls(
            free_failures=settings.throttle_free_failures,
            base_delay=timedelta(seconds=settings.throttle_base_delay_seconds),
            max_delay=timedelta(seconds=settings.throttle_max_delay_seconds),
            account=per(settings.throttle_account_limit, settings.throttle_account_window_seconds),
            address=per(settings.throttle_address_limit, settings.throttle_address_window_seconds),
            global_=per(settings.throttle_global_limit, settings.throttle_global_window_seconds),
            signup=per(settings.throttle_signup_limit, settings.throttle_signup_window_seconds),
        )

    @property
    def backoff(self) -> Backoff:
        """Return the progressive delay of an account's (or a device's) failures."""
        # A wait comes after a failure, so none can come before the first: 0 free is 1 free.
        return Backoff(max(self.free_failures, 1), self.base_delay, self.max_delay)

    def refusal_window(self, scope: str) -> timedelta:
        """Return how long the refusals of one counter of ``scope`` make one row in the log.

        A shared counter's window; for an account's or a device's wait, the longest wait.
        """
        windows = {ADDRESS: self.address, GLOBAL: self.global_, SIGNUP: self.signup}
        found = windows.get(scope)
        return self.max_delay if found is None else found.window

    @property
    def longest_window(self) -> timedelta:
        """Return the longest window of any counter: a counter older than it counts nothing."""
        return max(
            limit.window for limit in (self.account, self.address, self.global_, self.signup)
        )


def account_key(username_key: str) -> str:
    """Return the counter key of a folded user name: a digest, so no name is stored twice."""
    return hashlib.sha256(username_key.encode("utf-8")).hexdigest()


def address_key(address: str | None) -> str:
    """Return the counter key of a client address: IPv4 as it is, IPv6 by its /64 network.

    One IPv6 host commonly holds a whole /64, so counting single addresses would count nothing.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
