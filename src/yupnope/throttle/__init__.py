"""Throttle guessing: the policy, the decision, and the places its counters are kept."""

from __future__ import annotations

from .policy import Limit, Policy
from .throttle import Counted, Throttle

__all__ = ["Counted", "Limit", "Policy", "Throttle"]
