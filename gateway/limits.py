"""Per-account ceilings on what a token holder can make the gateway store, so that no table
grows without bound however a client behaves. Each refusal names its limit in
``details.reason``; docs/api.md ("Limits and validation") lists them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import ApiError

__all__ = [
    "MAX_ACTIVE_TOKENS",
    "MAX_IDEMPOTENCY_KEYS_PER_DAY",
    "MAX_PENDING_PAIRING_CODES",
    "MAX_WEBHOOK_ENDPOINTS",
    "DailyBudget",
    "too_many",
]

MAX_PENDING_PAIRING_CODES = 1000
"""Unused, unexpired pairing codes an account may hold at once (room for onboarding a fleet
with a few hundred phones pairing in parallel; spent and expired codes are purged after a day)."""
MAX_WEBHOOK_ENDPOINTS = 20
"""Webhook endpoints (not deleted) per account."""
MAX_ACTIVE_TOKENS = 100
"""Access tokens (not revoked) per account."""
MAX_IDEMPOTENCY_KEYS_PER_DAY = 100_000
"""Requests carrying an ``Idempotency-Key`` per account in any 24 hours (each may store one key)."""

_HOUR = 3600.0


def too_many(reason: str, limit: int, what: str) -> ApiError:
    """The validation_error for an account that already holds ``limit`` of something."""
    return ApiError(
        "validation_error",
        f"this account already has {limit} {what}, the most it may hold",
        {"reason": reason, "limit": limit},
    )


class DailyBudget:
    """Counts events per key in hourly buckets over the last 24 hours (memory: 24 ints a key).

    ``take(key)`` records one event, or returns the seconds until the oldest bucket leaves the
    window when the key already used ``limit``. Per process: several gateways each allow it.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, dict[int, int]] = {}

    def take(self, key: str) -> float:
        """0.0 when allowed (and counted), else the seconds to wait."""
        now = self._clock()
        hour = int(now // _HOUR)
        buckets = self._buckets.setdefault(key, {})
        for old in [h for h in buckets if h <= hour - 24]:
            del buckets[old]
        if sum(buckets.values()) >= self.limit:
            return (min(buckets) + 24) * _HOUR - now
        buckets[hour] = buckets.get(hour, 0) + 1
        return 0.0
