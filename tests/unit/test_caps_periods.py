"""Unit tests of the time arithmetic behind the sending caps: UTC month boundaries (December
rolls into January) and id floors, whose ULID order is the time order the caps count by."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.ids import id_floor, id_time, new_id
from gateway.sending.caps import _day_start, _month_start


def test_month_and_day_boundaries_in_utc() -> None:
    """Mid-December: the month began on the 1st and the next one is 1 January of next year."""
    now = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    start, following = _month_start(now)
    assert start == datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    assert following == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert _day_start(now) == datetime(2026, 12, 31, tzinfo=UTC).timestamp()


def test_id_floor_orders_like_time() -> None:
    """An id made now is >= the floor of a moment ago and < the floor of a moment ahead."""
    made = new_id("req")
    at = id_time(made)
    assert id_floor("req", at - 1) <= made < id_floor("req", at + 1)
    assert abs(id_time(id_floor("req", at)) - at) < 0.002
