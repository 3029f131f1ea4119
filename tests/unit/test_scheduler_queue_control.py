"""Unit tests of the scheduler's queue control: a paused account is never dispatched (its
messages still expire, other accounts are not held up), resuming dispatches in order; depth by
priority and the oldest queued message follow enqueues, dispatches, requeues and expiries."""

from __future__ import annotations

from scheduler import DeviceLimits, Priority

from .scheduler_fakes import drain_one_by_one, ids, make, online, work


def test_paused_account_waits_and_others_flow() -> None:
    """Nothing of a paused account is dispatched while another account's work goes out; resume
    dispatches the paused work in its order."""
    scheduler, _ = make()
    online(scheduler, "d1", "a")
    online(scheduler, "d2", "b")
    scheduler.set_paused("a", True)
    for n in range(3):
        scheduler.enqueue(work(f"a{n}", "a"))
    scheduler.enqueue(work("b0", "b"))
    assert ids(scheduler.next_dispatches()) == ["b0"]
    assert scheduler.next_dispatches() == [] and scheduler.next_wakeup() == 1e9
    scheduler.set_paused("a", False)
    assert ids(scheduler.next_dispatches()) == ["a0", "a1", "a2"]


def test_paused_messages_still_expire_and_pause_outlives_idle_account() -> None:
    """A paused account's messages expire at their time; the pause holds even after the
    account's records were dropped for being idle."""
    scheduler, clock = make()
    scheduler.set_paused("a", True)
    scheduler.enqueue(work("m", "a", expires_at=clock.now + 5))
    clock.advance(5)
    assert [e.message_id for e in scheduler.expire_due()] == ["m"]
    online(scheduler, "d1", "a")
    scheduler.enqueue(work("n", "a"))
    assert scheduler.next_dispatches() == []
    scheduler.set_paused("a", False)
    assert ids(scheduler.next_dispatches()) == ["n"]


def test_depth_by_priority_and_oldest_queued() -> None:
    """Depths per priority and the oldest queued message follow dispatches and requeues."""
    scheduler, _ = make()
    for name, priority in (("low", Priority.LOW), ("n1", Priority.NORMAL), ("otp", Priority.OTP)):
        scheduler.enqueue(work(name, "a", priority))
    scheduler.enqueue(work("other", "b", Priority.HIGH))
    assert scheduler.queue_depths("a") == (1, 0, 1, 1)
    assert scheduler.queue_depths() == (1, 1, 1, 1)
    assert scheduler.oldest_queued("a") == ("low", 0.0) and scheduler.oldest_queued("zzz") is None
    online(scheduler, "d1", "a", limits=DeviceLimits(max_in_flight=1))
    assert ids(scheduler.next_dispatches()) == ["otp"]
    assert scheduler.queue_depths("a") == (0, 0, 1, 1) and scheduler.oldest_queued("a") == ("low", 0.0)
    assert scheduler.set_offline("d1") == ["otp"]
    assert scheduler.queue_depths("a") == (1, 0, 1, 1)
    scheduler.set_online("d1")
    drain_one_by_one(scheduler, 3)
    assert scheduler.queue_depths("a") == (0, 0, 0, 0) and scheduler.oldest_queued("a") is None


def test_oldest_queued_stays_bounded() -> None:
    """Thousands of messages through a queue that always holds one old message keep the age
    heap compact."""
    scheduler, _ = make()
    scheduler.enqueue(work("stuck", "a", pinned="gone"))
    online(scheduler, "d1", "a")
    for n in range(5000):
        scheduler.enqueue(work(f"m{n}", "a"))
        assert ids(scheduler.next_dispatches()) == [f"m{n}"]
        scheduler.finished(f"m{n}")
    assert scheduler.oldest_queued("a") == ("stuck", 0.0)
    assert len(scheduler._accounts["a"].by_age) < 200


def test_oldest_queued_age_follows_the_clock_and_survives_a_requeue() -> None:
    """The age counts from when the scheduler took the message and keeps counting through a
    hand-over that came back (relay offline)."""
    scheduler, clock = make()
    scheduler.enqueue(work("m", "a"))
    clock.advance(7)
    assert scheduler.oldest_queued("a") == ("m", 7.0)
    online(scheduler, "d1", "a")
    assert ids(scheduler.next_dispatches()) == ["m"]
    clock.advance(3)
    assert scheduler.set_offline("d1") == ["m"]
    assert scheduler.oldest_queued("a") == ("m", 10.0)
