"""Rate limits keyed by an id (a token, a client address): pure, with an injected clock."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Gcra", "KeyedTokenBuckets", "RateVerdict"]


class KeyedTokenBuckets:
    """``rate`` tokens per second up to ``burst``, one bucket per key.

    ``take(key)`` returns 0.0 when allowed, else the seconds until one token is available.
    Idle buckets are dropped once full so memory follows the active keys.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens for ``key`` if it has them."""
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            if len(self._buckets) > 10_000:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, (t, s) in self._buckets.items() if t + (now - s) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """One GCRA decision and what the ``RateLimit-*`` headers say about it."""

    allowed: bool
    limit: int
    """The burst: requests allowed at once from a full allowance."""
    remaining: int
    """Requests that would still be allowed right now."""
    reset: float
    """Seconds until the allowance is full again."""
    retry_after: float
    """Seconds until one request is allowed (0 when allowed)."""

    def headers(self) -> dict[str, str]:
        """``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (whole seconds)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }


class Gcra:
    """The generic cell rate algorithm: ``rate`` requests per second, bursts of ``burst``.

    One float per key (the theoretical arrival time), an injected clock, no timers. Keys whose
    allowance is full again are dropped, so memory follows the active keys.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._capacity = burst * self._interval
        self._clock = clock
        self._tat: dict[str, float] = {}

    def take(self, key: str) -> RateVerdict:
        """Decide one request of ``key`` (an allowed one is counted)."""
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        after = tat + self._interval
        if after - now > self._capacity + 1e-9:
            wait = after - now - self._capacity
            return RateVerdict(False, self.burst, 0, tat - now, wait)
        self._tat[key] = after
        if len(self._tat) > 10_000:
            self._tat = {k: t for k, t in self._tat.items() if t > now}
        remaining = int((self._capacity - (after - now)) / self._interval + 1e-9)
        return RateVerdict(True, self.burst, remaining, after - now, 0.0)
