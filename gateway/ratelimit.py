"""Token buckets keyed by an id (account, device): pure, with an injected clock."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["KeyedTokenBuckets"]


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
