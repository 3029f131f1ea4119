"""Calendar helpers for tests of time-based sending controls (scheduled sends, quiet hours),
which move the gateway's :class:`tests.harness.MovableClock` to a chosen local moment."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

__all__ = ["next_local"]


def next_local(after: datetime, weekday: int, hour: int, minute: int, zone: tzinfo) -> datetime:
    """The first ``weekday`` (0 = Monday) ``hour:minute`` in time zone ``zone`` after ``after``."""
    local = after.astimezone(zone)
    day = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while day <= local or day.weekday() != weekday:
        day = (day + timedelta(days=1)).replace(hour=hour, minute=minute)
    return day
