"""Sliding-window send counters of one relay: per minute and per day.

:class:`SendRateWindow` answers three questions for the scheduler — may the
relay take a dispatch now, how many dispatches did it take in the last minute
(the routing tie-break), and from when on will it be allowed again (what
``next_wakeup`` reports while work waits for a rate-limited relay).

The minute window is exact: it keeps the timestamp of each dispatch of the
last 60 s, so it holds at most ``per_minute`` entries. The day window counts
dispatches in one-minute buckets, so it holds at most 1441 buckets however
much the relay sends. A bucket is counted until the whole minute it covers has
left the 24 h window; the day limit is therefore never exceeded, and a relay
may wait up to one minute longer than an exact counter would make it.

A dispatch at time ``t`` stops counting at ``t + 60`` (minute window) and at
``bucket_end + 86400`` (day window); :meth:`SendRateWindow.available_at`
returns exactly those sums, so a wakeup scheduled for that time always finds
the relay allowed again.
"""

from __future__ import annotations

from collections import deque

from .model import DeviceLimits

__all__ = ["DAY_SECONDS", "MINUTE_SECONDS", "SendRateWindow"]

# An empty deque costs ~600 bytes (its first block), and most relays of a big fleet sit idle:
# a window holds these shared, always-empty stand-ins until its first dispatch and again once
# everything has aged out. ``maxlen=0`` makes an append to them a no-op, never a shared entry;
# :meth:`SendRateWindow.record` swaps in deques of its own first.
_NO_TIMES: deque[float] = deque(maxlen=0)
_NO_BUCKETS: deque[list[int]] = deque(maxlen=0)

MINUTE_SECONDS = 60.0
DAY_SECONDS = 86_400.0


class SendRateWindow:
    """Dispatch counters of one relay over the last minute and the last day."""

    __slots__ = ("_day_buckets", "_day_total", "_minute")

    def __init__(self) -> None:
        self._minute = _NO_TIMES
        """Times of the dispatches of the last 60 s, oldest first."""
        self._day_buckets = _NO_BUCKETS
        """``[minute_index, count]`` per minute with dispatches, oldest first."""
        self._day_total = 0
        """Sum of the counts in :attr:`_day_buckets`."""

    def record(self, now: float) -> None:
        """Count one dispatch at ``now``."""
        self._forget_old(now)
        if self._minute is _NO_TIMES:
            self._minute = deque()
        if self._day_buckets is _NO_BUCKETS:
            self._day_buckets = deque()
        self._minute.append(now)
        minute_index = int(now // MINUTE_SECONDS)
        if self._day_buckets and self._day_buckets[-1][0] == minute_index:
            self._day_buckets[-1][1] += 1
        else:
            self._day_buckets.append([minute_index, 1])
        self._day_total += 1

    def sent_last_minute(self, now: float) -> int:
        """Dispatches in the 60 s before ``now``."""
        self._forget_old(now)
        return len(self._minute)

    def sent_last_day(self, now: float) -> int:
        """Dispatches counted in the day window at ``now``."""
        self._forget_old(now)
        return self._day_total

    def day_opens_at(self, now: float, per_day: int) -> float:
        """Earliest time, ``now`` or later, at which fewer than ``per_day`` dispatches count."""
        self._forget_old(now)
        remaining = self._day_total
        if remaining < per_day:
            return now
        for minute_index, count in self._day_buckets:
            remaining -= count
            if remaining < per_day:
                return self._bucket_leaves_at(minute_index)
        return now  # pragma: no cover - the loop always ends below the limit

    def allows(self, now: float, limits: DeviceLimits) -> bool:
        """Whether one more dispatch at ``now`` stays within ``limits``."""
        self._forget_old(now)
        if len(self._minute) >= limits.per_minute:
            return False
        return limits.per_day is None or self._day_total < limits.per_day

    def available_at(self, now: float, limits: DeviceLimits) -> float:
        """Earliest time, ``now`` or later, at which :meth:`allows` turns true.

        Assumes no other dispatch is recorded in between.
        """
        self._forget_old(now)
        opens = now
        excess = len(self._minute) - limits.per_minute
        if excess >= 0:
            opens = max(opens, self._minute[excess] + MINUTE_SECONDS)
        if limits.per_day is not None and self._day_total >= limits.per_day:
            # Drop buckets oldest first until the total falls below the limit.
            remaining = self._day_total
            for minute_index, count in self._day_buckets:
                remaining -= count
                if remaining < limits.per_day:
                    opens = max(opens, self._bucket_leaves_at(minute_index))
                    break
        return opens

    def _forget_old(self, now: float) -> None:
        """Drop dispatches that no longer count at ``now``."""
        minute = self._minute
        while minute and minute[0] + MINUTE_SECONDS <= now:
            minute.popleft()
        if not minute:
            self._minute = _NO_TIMES
        buckets = self._day_buckets
        while buckets and self._bucket_leaves_at(buckets[0][0]) <= now:
            self._day_total -= buckets.popleft()[1]
        if not buckets:
            self._day_buckets = _NO_BUCKETS

    @staticmethod
    def _bucket_leaves_at(minute_index: int) -> float:
        """Time from which the dispatches of bucket ``minute_index`` stop counting for the day."""
        return (minute_index + 1) * MINUTE_SECONDS + DAY_SECONDS
