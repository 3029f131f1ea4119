"""A shifted clock for tests of time-based sending controls (scheduled sends, quiet hours).

:class:`ShiftedClock` runs at real speed, offset by an amount the test sets or moves: the
gateway's send path reads it (``start_gateway(..., clock=clock)``), so a test can stand at
08:59 on a Monday in Tashkent, or jump an hour ahead, without waiting. After moving it, call
``pipeline.wake()`` so the gateway's timers look again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["ShiftedClock", "next_local"]


class ShiftedClock:
    """``time.time()`` plus an offset."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        """The clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self(), UTC)

    def advance(self, seconds: float) -> None:
        """Jump ahead."""
        self.offset += seconds

    def jump_to(self, moment: datetime) -> None:
        """Make it read ``moment`` now (and run on from there); never backwards."""
        target = moment.timestamp() - time.time()
        if target < self.offset:
            raise ValueError("a shifted clock only moves forward")
        self.offset = target


def next_local(after: datetime, weekday: int, hour: int, minute: int, zone: tzinfo) -> datetime:
    """The first ``weekday`` (0 = Monday) ``hour:minute`` in time zone ``zone`` after ``after``."""
    local = after.astimezone(zone)
    day = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while day <= local or day.weekday() != weekday:
        day = (day + timedelta(days=1)).replace(hour=hour, minute=minute)
    return day
