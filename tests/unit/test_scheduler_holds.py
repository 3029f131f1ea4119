"""Pure parts of scheduled sending: :class:`scheduler.HoldQueue` (held ids by release time,
driven by the fake clock) and :class:`scheduler.SendWindows` (quiet-hours arithmetic)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler import HoldQueue, SendWindows
from tests.unit.scheduler_fakes import FakeClock

TASHKENT = ZoneInfo("Asia/Tashkent")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_NINE = ((540, 1260),)
WORKDAYS = (NINE_TO_NINE,) * 5 + ((), ())


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> float:
    """Epoch seconds of a local wall time."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def test_holds_release_in_time_order_when_due() -> None:
    """Nothing is due early; due ones come out earliest first, once."""
    clock = FakeClock(100.0)
    holds = HoldQueue(clock)
    holds.hold("b", 120.0)
    holds.hold("a", 110.0)
    holds.hold("c", 130.0)
    assert holds.due() == [] and holds.next_release() == 110.0 and len(holds) == 3
    clock.advance(25)
    assert holds.due() == ["a", "b"] and holds.due() == []
    assert "c" in holds and "a" not in holds and holds.next_release() == 130.0


def test_dropped_or_moved_holds() -> None:
    """A dropped id never comes out; holding again moves it; limit bounds one call."""
    clock = FakeClock(0.0)
    holds = HoldQueue(clock)
    for i in range(5):
        holds.hold(f"m{i}", float(i))
    assert holds.drop("m0") and not holds.drop("m0")
    holds.hold("m1", 50.0)
    assert holds.next_release() == 2.0
    clock.advance(10)
    assert holds.due(limit=2) == ["m2", "m3"] and holds.due() == ["m4"]
    clock.advance(40)
    assert holds.due() == ["m1"] and holds.next_release() is None


def test_release_inside_before_and_after_the_window() -> None:
    """Inside the window: now; before it: its start; after it: the next working day's start;
    Friday evening: Monday morning."""
    windows = SendWindows(TASHKENT, WORKDAYS)
    monday_noon = at(TASHKENT, 2026, 12, 7, 12, 0)
    assert windows.release_at(monday_noon) == monday_noon and windows.is_open(monday_noon)
    assert windows.release_at(at(TASHKENT, 2026, 12, 7, 6, 30)) == at(TASHKENT, 2026, 12, 7, 9, 0)
    assert windows.release_at(at(TASHKENT, 2026, 12, 7, 21, 0)) == at(TASHKENT, 2026, 12, 8, 9, 0)
    assert windows.release_at(at(TASHKENT, 2026, 12, 11, 22, 0)) == at(TASHKENT, 2026, 12, 14, 9, 0)
    assert not windows.is_open(at(TASHKENT, 2026, 12, 12, 12, 0))


def test_windows_touching_at_midnight_and_several_a_day() -> None:
    """22:00-24:00 then 00:00-06:00 is open across midnight; a gap between two windows of a day
    waits for the second."""
    night = ((0, 360), (720, 780), (1320, 1440))
    windows = SendWindows(TASHKENT, (night,) * 7)
    assert windows.is_open(at(TASHKENT, 2026, 12, 7, 23, 59))
    assert windows.is_open(at(TASHKENT, 2026, 12, 8, 0, 0))
    assert windows.release_at(at(TASHKENT, 2026, 12, 8, 7, 0)) == at(TASHKENT, 2026, 12, 8, 12, 0)


def test_daylight_saving_day() -> None:
    """In a zone with DST the opening is the local wall time on both sides of the change."""
    windows = SendWindows(BERLIN, (NINE_TO_NINE,) * 7)
    before = at(BERLIN, 2026, 3, 28, 22, 0)  # the night clocks go forward
    assert windows.release_at(before) == at(BERLIN, 2026, 3, 29, 9, 0)
    assert windows.release_at(at(BERLIN, 2026, 10, 24, 22, 0)) == at(BERLIN, 2026, 10, 25, 9, 0)


@pytest.mark.parametrize(
    "week",
    [
        ((),) * 7,
        (((600, 540),),) + ((),) * 6,
        (((540, 700), (600, 800)),) + ((),) * 6,
        (((0, 1441),),) + ((),) * 6,
        ((),) * 6,
    ],
)
def test_nonsense_windows_are_refused(week: tuple[tuple[tuple[int, int], ...], ...]) -> None:
    """No window at all, reversed, overlapping, past midnight, or not seven days: ValueError."""
    with pytest.raises(ValueError):
        SendWindows(TASHKENT, week)
