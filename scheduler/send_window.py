"""Allowed sending windows per weekday in a time zone (an account's quiet hours), as pure time
arithmetic: :meth:`SendWindows.release_at` is the earliest instant at or after ``t`` at which a
message may go out.

Windows are wall-clock times of the account's time zone: ``[start, end)`` per weekday,
``end`` may be 24:00 (midnight at the end of the day), a window never crosses midnight (write
``mon 22:00-24:00`` and ``tue 00:00-06:00``; two touching windows are one). Daylight-saving
gaps and folds follow :mod:`zoneinfo` (``fold=0``): a wall time that does not exist on a
spring-forward day (02:30 when clocks jump from 02:00 to 03:00) is shifted forward by the gap
(03:30); one that occurs twice on a fall-back day is its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAYS", "SendWindows", "Window"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys, Monday first (``datetime.weekday()`` order)."""

Window = tuple[int, int]
"""``(start, end)`` in minutes after local midnight, ``0 <= start < end <= 1440``."""


@dataclass(frozen=True, slots=True)
class SendWindows:
    """When sending is allowed: per weekday (Monday first) a sorted tuple of disjoint windows."""

    zone: ZoneInfo
    week: tuple[tuple[Window, ...], ...]

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("week must have 7 days")
        for day in self.week:
            previous_end = -1
            for start, end in day:
                if not 0 <= start < end <= 1440 or start < previous_end:
                    raise ValueError(f"windows must be sorted, disjoint and within the day: {day}")
                previous_end = end
        if not any(self.week):
            raise ValueError("at least one window is needed, or nothing could ever be sent")

    def is_open(self, t: float) -> bool:
        """Whether sending is allowed at ``t`` (seconds since the epoch)."""
        return self.release_at(t) == t

    def release_at(self, t: float) -> float:
        """``t`` when a window is open then, else the start of the next window."""
        local = datetime.fromtimestamp(t, UTC).astimezone(self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        for offset in range(8):
            day = midnight + timedelta(days=offset)
            for start, end in self.week[day.weekday()]:
                opens = self._instant(day, start)
                closes = self._instant(day, end)
                if opens <= t < closes:
                    return t
                if opens > t:
                    return opens
        raise AssertionError("unreachable: a week with a window always has a next opening")

    def _instant(self, day: datetime, minutes: int) -> float:
        """The epoch time of ``minutes`` after local midnight of ``day`` (24:00: next midnight)."""
        wall = day + timedelta(minutes=minutes)
        return datetime.combine(wall.date(), time(wall.hour, wall.minute), tzinfo=self.zone).timestamp()
