"""An account's quiet hours: the wire shape, its strict validation, and when a message may go.

The account names a time zone and, per weekday, the windows in which sending is allowed;
outside them a message that is not exempt waits (``status: "scheduled"``, ``hold_reason:
"quiet_hours"``) until the next window opens. OTP codes are exempt unless the setting says
otherwise (``exempt: []``); ``high`` priority may be exempted too. The rule is applied when a
message is accepted (or, with ``send_at``, for the time it asks for); see docs/api.md "Quiet
hours". The time arithmetic is :class:`scheduler.SendWindows` (pure).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, available_timezones

import msgspec

from gateway.errors import ApiError
from scheduler import DAYS, Priority, SendWindows

__all__ = ["Exemption", "QuietHours", "SendingDays", "hold_until", "sending_windows"]

HHMM = Annotated[str, msgspec.Meta(pattern=r"\A(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)\Z")]
"""A wall-clock time ``HH:MM`` from ``00:00`` to ``24:00`` (the end of the day)."""
WindowPair = Annotated[list[HHMM], msgspec.Meta(min_length=2, max_length=2)]
"""``["09:00", "21:00"]``: start and end (a list, not a tuple: OpenAPI 3.1 has no tuple
``items`` its tools all read)."""
DayWindows = Annotated[list[WindowPair], msgspec.Meta(max_length=6)]
Exemption = Literal["otp", "high"]
MAX_TIME_ZONE = 64


class SendingDays(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Allowed sending windows per weekday, ``[start, end]`` in local time, ``start < end``.
    A day left out (or ``[]``) allows no sending that day."""

    mon: DayWindows = []
    tue: DayWindows = []
    wed: DayWindows = []
    thu: DayWindows = []
    fri: DayWindows = []
    sat: DayWindows = []
    sun: DayWindows = []


class QuietHours(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``quiet_hours`` of ``PATCH /v1/account``: when the account's messages may be sent."""

    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TIME_ZONE)]
    """An IANA time zone, e.g. ``Asia/Tashkent``."""
    windows: SendingDays
    """When sending is allowed, per weekday."""
    exempt: Annotated[list[Exemption], msgspec.Meta(max_length=2)] = msgspec.field(
        default_factory=lambda: ["otp"]
    )
    """What is sent at any time: ``otp`` (login codes; the default) and/or ``high`` priority."""


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: reason}})


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def sending_windows(quiet: QuietHours) -> SendWindows:
    """The pure form of ``quiet``; ``validation_error`` naming the field when it makes no sense
    (unknown time zone, a window that ends before it starts, overlapping windows, no window at
    all, an exemption named twice)."""
    if quiet.time_zone not in _zones():
        raise _invalid("quiet_hours.time_zone", "not an IANA time zone (e.g. Asia/Tashkent)")
    if len(set(quiet.exempt)) != len(quiet.exempt):
        raise _invalid("quiet_hours.exempt", "each of otp, high at most once")
    week: list[tuple[tuple[int, int], ...]] = []
    for day in DAYS:
        pairs = sorted((_minutes(pair[0]), _minutes(pair[1])) for pair in getattr(quiet.windows, day))
        previous_end = -1
        for start, end in pairs:
            if start >= end:
                raise _invalid(f"quiet_hours.windows.{day}", "each window must end after it starts")
            if start < previous_end:
                raise _invalid(f"quiet_hours.windows.{day}", "windows must not overlap")
            previous_end = end
        week.append(tuple(pairs))
    if not any(week):
        raise _invalid("quiet_hours.windows", "at least one window: with none nothing could be sent")
    return SendWindows(ZoneInfo(quiet.time_zone), tuple(week))


def hold_until(quiet: QuietHours | None, priority: Priority, t: float) -> float:
    """When a message of ``priority`` that may go at ``t`` may actually go: ``t`` itself without
    quiet hours, for an exempt message, or inside a window; else the next window's opening."""
    if quiet is None:
        return t
    if priority is Priority.OTP and "otp" in quiet.exempt:
        return t
    if priority is Priority.HIGH and "high" in quiet.exempt:
        return t
    return _cached_windows(msgspec.json.encode(quiet)).release_at(t)


@lru_cache(maxsize=1024)
def _cached_windows(encoded: bytes) -> SendWindows:
    """Stored settings were validated when set; this only saves rebuilding them per message."""
    return sending_windows(msgspec.json.decode(encoded, type=QuietHours))
