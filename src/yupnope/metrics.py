"""Count what an operator watches, for Prometheus: logins, refusals, hashes, sessions, requests.

``Metrics`` itself counts nothing: with the METRICS setting off (the default) every rule holds
it, and each count is a call that returns at once, with prometheus_client never imported.
``Prometheus`` counts. Under ``yupnope serve`` each worker process counts in files of its own
in PROMETHEUS_MULTIPROC_DIR, which ``serve`` sets before the app is built (prometheus_client
reads it when it is first imported), and a scrape adds up every worker's files
(prometheus_client's multiprocess mode). Elsewhere (the test client, ``--debug``) the counts
live in the app's own registry.

Every label takes a bounded set of values: the step and outcome of a login, a throttle
scope, where the hashing gate refused, a session's kind, a route's URL rule (never the path
as sent, which a client could make up without end).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: The variable prometheus_client's multiprocess mode reads: the folder of the workers' files.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

#: Seconds, for argon2 at OWASP's costs (tens of milliseconds) and a machine busy with them.
HASH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: Seconds, from a forward-auth check answered before Flask (under a millisecond) to a login.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: The steps of a login: the password, the second step (a code, a passkey's answer), a passkey.
PASSWORD, SECOND_FACTOR, PASSKEY = "password", "second_factor", "passkey"

#: How a login attempt ended.
SUCCESS = "success"
SECOND_STEP_NEEDED = "second_step_needed"
WRONG_CREDENTIALS = "wrong_credentials"
THROTTLED = "throttled"
BUSY = "busy"
CHALLENGE_GONE = "challenge_gone"
REFUSED = "refused"

#: Where the hashing gate refused: at the door, before Flask (web/admission), or in line.
DOOR, GATE = "door", "gate"


class Metrics:
    """Count nothing: the metrics of a server with METRICS off, each method a no-op."""

    #: Whether anything is counted, so the web layer installs its measuring only then.
    enabled = False

    def login(self, step: str, outcome: str) -> None:
        """Count a login attempt at ``step`` that ended in ``outcome``."""

    def throttled(self, scope: str) -> None:
        """Count an attempt the throttle refused, by the scope of the counter that refused it."""

    def busy(self, where: str) -> None:
        """Count a request the hashing gate refused, at the door or in line."""

    def hashed(self, seconds: float) -> None:
        """Record how long one argon2 computation took, its wait for a slot left out."""

    def session_started(self, kind: str) -> None:
        """Count a session started, a browser's or an API client's."""

    def served(self, route: str, seconds: float) -> None:
        """Record how long a request for ``route`` (its URL rule) took to answer."""


#: The metrics that count nothing, for whatever is built without the app's wiring.
OFF = Metrics()


class Prometheus(Metrics):
    """Count in prometheus_client's metrics, named ``yupnope_…``, in a registry of their own."""

    enabled = True

    def __init__(self) -> None:
        # Imported here, never at the top: with metrics off the library is not loaded, and
        # under serve it is first loaded once PROMETHEUS_MULTIPROC_DIR is set.
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._logins = Counter(
            "yupnope_logins",
            "Login attempts by step (password, second_factor, passkey) and outcome.",
            ["step", "outcome"],
            registry=self.registry,
        )
        self._throttled = Counter(
            "yupnope_throttled",
            "Attempts the throttle refused, by the scope of the counter that refused them.",
            ["scope"],
            registry=self.registry,
        )
        self._busy = Counter(
            "yupnope_hashing_refused",
            "Requests refused with 503 because every hashing slot and place in line was taken.",
            ["at"],
            registry=self.registry,
        )
        self._hashes = Histogram(
            "yupnope_hash_seconds",
            "Seconds one argon2 computation took, without its wait for a slot.",
            buckets=HASH_BUCKETS,
            registry=self.registry,
        )
        self._sessions = Counter(
            "yupnope_sessions_started",
            "Sessions started, by kind (browser, api).",
            ["kind"],
            registry=self.registry,
        )
        self._requests = Histogram(
            "yupnope_request_seconds",
            "Seconds to answer a request, by route (the URL rule; unmatched for none).",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self._scraped: CollectorRegistry | None = None

    def login(self, step: str, outcome: str) -> None:
        self._logins.labels(step, outcome).inc()

    def throttled(self, scope: str) -> None:
        self._throttled.labels(scope).inc()

    def busy(self, where: str) -> None:
        self._busy.labels(where).inc()

    def hashed(self, seconds: float) -> None:
        self._hashes.observe(seconds)

    def session_started(self, kind: str) -> None:
        self._sessions.labels(kind).inc()

    def served(self, route: str, seconds: float) -> None:
        self._requests.labels(route).observe(seconds)

    def scraped(self) -> CollectorRegistry:
        """Return the registry a scrape reads: every worker's files, or this app's own counts."""
        if self._scraped is None:
            if os.environ.get(MULTIPROCESS_DIR):
                from prometheus_client import CollectorRegistry
                from prometheus_client.multiprocess import MultiProcessCollector

                self._scraped = CollectorRegistry()
                # The library leaves this constructor unannotated.
                MultiProcessCollector(self._scraped)  # type: ignore[no-untyped-call]
            else:
                self._scraped = self.registry
        return self._scraped


def of(setting: str) -> Metrics:
    """Return the metrics the METRICS setting asks for: none when ``off``."""
    return OFF if setting == "off" else Prometheus()
