"""Unit tests of :mod:`scheduler`: in-flight windows, rate limits, expiry, wakeups and cost.

The scheduler is pure, so every test drives it with a fake clock and needs no
event loop.
"""

from __future__ import annotations

import pytest

from scheduler import DeviceLimits, Expiry, Priority
from scheduler.rate_window import DAY_SECONDS, SendRateWindow

from .scheduler_fakes import FakeClock, ids, make, online, work

# -- limits -------------------------------------------------------------------


def test_max_in_flight_is_honoured() -> None:
    """A relay never holds more than max_in_flight; a finished message frees one slot."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=3, per_minute=100))
    for n in range(10):
        scheduler.enqueue(work(f"m{n}"))
    assert len(scheduler.next_dispatches()) == 3
    assert scheduler.next_dispatches() == []
    assert scheduler.acked("m0", "d1")
    assert scheduler.next_dispatches() == []
    assert scheduler.finished("m0")
    assert ids(scheduler.next_dispatches()) == ["m3"]
    assert scheduler.device_load("d1") == 3


def test_per_minute_limit_and_wakeup() -> None:
    """Past per_minute dispatches the relay pauses, and next_wakeup names when the window opens."""
    scheduler, clock = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=100, per_minute=5))
    for n in range(12):
        scheduler.enqueue(work(f"m{n}", expires_at=clock.now + 3_600))
    start = clock.now
    assert len(scheduler.next_dispatches()) == 5
    assert scheduler.next_dispatches() == []
    assert scheduler.next_wakeup() == start + 60
    clock.advance(59.9)
    assert scheduler.next_dispatches() == []
    clock.now = start + 60
    assert ids(scheduler.next_dispatches()) == [f"m{n}" for n in range(5, 10)]


def test_per_minute_window_slides() -> None:
    """Dispatches spread over time leave the window one by one, not all at once."""
    scheduler, clock = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=100, per_minute=2))
    for n in range(4):
        scheduler.enqueue(work(f"m{n}"))
    start = clock.now
    assert len(scheduler.next_dispatches(limit=1)) == 1
    clock.advance(10)
    assert len(scheduler.next_dispatches()) == 1
    assert scheduler.next_wakeup() == start + 60
    clock.now = start + 60
    assert ids(scheduler.next_dispatches()) == ["m2"]
    assert scheduler.next_wakeup() == start + 70


def test_per_day_limit_and_wakeup() -> None:
    """Past per_day dispatches the relay pauses for the day, and next_wakeup says until when."""
    clock = FakeClock(now=600.0)  # start of a minute bucket
    scheduler, _ = make(clock)
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=100, per_minute=100, per_day=3))
    for n in range(5):
        scheduler.enqueue(work(f"m{n}", expires_at=1e9))
    assert len(scheduler.next_dispatches()) == 3
    clock.advance(3_600)
    assert scheduler.next_dispatches() == []
    opens = scheduler.next_wakeup()
    assert opens is not None
    assert 600 + DAY_SECONDS <= opens <= 600 + DAY_SECONDS + 60
    clock.now = opens - 1
    assert scheduler.next_dispatches() == []
    clock.now = opens
    assert len(scheduler.next_dispatches()) == 2


def test_rate_window_day_buckets_stay_bounded() -> None:
    """A relay sending all day keeps at most one day bucket per minute."""
    window = SendRateWindow()
    limits = DeviceLimits(per_minute=1_000, per_day=None)
    for second in range(0, 2 * int(DAY_SECONDS), 7):
        window.record(float(second))
    assert len(window._day_buckets) <= 1_441
    assert window.sent_last_minute(2 * DAY_SECONDS) <= 9
    assert window.allows(2 * DAY_SECONDS, limits)


def test_rate_window_counts_again_after_going_idle() -> None:
    """A window whose dispatches all aged out (and so gave its deques back) counts a new burst
    from zero, in both windows."""
    window = SendRateWindow()
    limits = DeviceLimits(per_minute=2, per_day=3)
    window.record(0.0)
    window.record(1.0)
    assert not window.allows(2.0, limits)
    assert window.sent_last_minute(61.0) == 0
    assert window.sent_last_day(61.0) == 2
    window.record(61.0)
    assert window.sent_last_minute(61.0) == 1
    assert not window.allows(62.0, limits)  # the day limit of 3 is reached
    later = 2 * DAY_SECONDS
    assert (window.sent_last_minute(later), window.sent_last_day(later)) == (0, 0)
    window.record(later)
    window.record(later)
    assert (window.sent_last_minute(later), window.sent_last_day(later)) == (2, 2)
    assert not window.allows(later, limits)


def test_limits_are_validated() -> None:
    """Nonsensical limits are refused when built."""
    with pytest.raises(ValueError):
        DeviceLimits(max_in_flight=0)
    with pytest.raises(ValueError):
        DeviceLimits(per_minute=0)
    with pytest.raises(ValueError):
        DeviceLimits(per_day=0)


# -- expiry -----------------------------------------------------------------------


def test_expiry_reasons() -> None:
    """Queued while its account never had a usable relay → no_device; queued while one was, or
    assigned → expired; acked → relay_timeout; each with a detail."""
    scheduler, clock = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=2))
    at = clock.now + 60
    scheduler.enqueue(work("assigned", expires_at=at))
    scheduler.enqueue(work("acked", expires_at=at))
    scheduler.enqueue(work("waiting", expires_at=at))
    scheduler.enqueue(work("orphan", "lonely", expires_at=at))
    scheduler.enqueue(work("pinned-nowhere", pinned="ghost", expires_at=at))
    scheduler.enqueue(work("later", expires_at=at + 1))
    scheduler.next_dispatches()
    scheduler.acked("acked", "d1")
    clock.advance(59)
    assert scheduler.expire_due() == []
    clock.advance(1)
    assert set(scheduler.expire_due()) == {
        Expiry("assigned", "expired", "dispatched to d1, never acknowledged"),
        Expiry("acked", "relay_timeout", "acknowledged by d1, never reported"),
        Expiry("waiting", "expired", "no relay could take it in time"),
        Expiry("orphan", "no_device", "no relay of the account was online and ready while it waited"),
        Expiry("pinned-nowhere", "expired", "pinned relay ghost was not available"),
    }
    assert scheduler.location("later") == ("queued", None)
    assert scheduler.in_flight() == 0
    assert scheduler.queue_depth() == 1


def test_next_wakeup_is_next_expiry_while_work_waits_for_a_relay() -> None:
    """Work with no relay does not keep the scheduler busy: the wakeup is its expiry."""
    scheduler, clock = make()
    assert scheduler.next_wakeup() is None
    scheduler.enqueue(work("m", expires_at=clock.now + 30))
    assert scheduler.next_dispatches() == []
    assert scheduler.next_wakeup() == clock.now + 30
    scheduler.finished("m")
    assert scheduler.next_wakeup() is None


def test_next_wakeup_is_now_when_limit_left_work_ready() -> None:
    """When a call stopped at its limit, next_wakeup says to call again now."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.enqueue(work("a"))
    scheduler.enqueue(work("b"))
    assert len(scheduler.next_dispatches(limit=1)) == 1
    assert scheduler.next_wakeup() == clock.now


# -- cost ---------------------------------------------------------------------------


def test_large_queue_decisions_stay_cheap() -> None:
    """100k queued messages: enqueue, dispatch and cancel-from-the-middle all finish quickly."""
    scheduler, _ = make()
    online(scheduler, "d1")
    for n in range(100_000):
        scheduler.enqueue(work(f"m{n}", priority=Priority(n % 4)))
    for n in range(1, 100_000, 2):
        scheduler.finished(f"m{n}")
    dispatched = scheduler.next_dispatches(limit=1_000)
    assert len(dispatched) == 1_000
    assert ids(dispatched) == [f"m{n}" for n in range(0, 4_000, 4)]
    assert scheduler.queue_depth() == 49_000


def test_stale_entries_are_compacted() -> None:
    """Cancelling most queued messages shrinks the queue and expiry heaps instead of leaking."""
    scheduler, _ = make()
    for n in range(10_000):
        scheduler.enqueue(work(f"m{n}"))
    for n in range(9_900):
        scheduler.finished(f"m{n}")
    queue = scheduler._accounts["acc"].unpinned[(frozenset(), None)]
    assert queue.live == 100
    assert len(queue._entries) <= 2 * 100 + 64
    assert len(scheduler._expiries) <= 2 * 100 + 1_024
    online(scheduler, "d1")
    assert ids(scheduler.next_dispatches(limit=3)) == ["m9900", "m9901", "m9902"]
