"""The reclaim grace inside the scheduler: a message a departed relay may hold waits for that
relay until its own deadline (driven by the fake clock), then goes to any relay; its counters
survive every hand-over."""

from __future__ import annotations

from scheduler import Priority, Work
from tests.unit.scheduler_fakes import ids, make, online, work


def test_held_message_waits_for_its_relay_until_the_grace_ends() -> None:
    """During the grace only the old relay may take the message; after it any relay may."""
    scheduler, clock = make()
    online(scheduler, "a")
    scheduler.enqueue(work("m"))
    (first,) = scheduler.next_dispatches()
    assert first.device_id == "a"
    assert scheduler.set_offline("a") == ["m"]
    assert scheduler.hold_for("m", "a", clock() + 30)
    online(scheduler, "b")
    assert scheduler.next_dispatches() == [] and scheduler.held_for("m") == "a"
    assert scheduler.next_wakeup() == clock() + 30
    clock.advance(30)
    (second,) = scheduler.next_dispatches()
    assert (second.device_id, second.attempt) == ("b", 2) and scheduler.held_for("m") is None


def test_old_relay_back_within_the_grace_gets_it_and_the_hold_ends() -> None:
    """A relay back in time is offered the message; its dispatch clears the hold, and the grace
    deadline then changes nothing while the message is on the relay."""
    scheduler, clock = make()
    online(scheduler, "a")
    scheduler.enqueue(work("m"))
    scheduler.next_dispatches()
    scheduler.set_offline("a")
    scheduler.hold_for("m", "a", clock() + 30)
    scheduler.set_online("a")
    (again,) = scheduler.next_dispatches()
    assert (again.device_id, again.attempt) == ("a", 2) and scheduler.held_for("m") is None
    clock.advance(31)
    assert scheduler.next_dispatches() == [] and scheduler.location("m") == ("assigned", "a")


def test_a_later_hold_replaces_the_earlier_deadline() -> None:
    """Held again (the relay left a second time), only the newer deadline counts."""
    scheduler, clock = make()
    online(scheduler, "a")
    online(scheduler, "b")
    scheduler.enqueue(work("m", pinned=None))
    scheduler.hold_for("m", "a", clock() + 10)
    clock.advance(5)
    scheduler.hold_for("m", "a", clock() + 10)
    scheduler.set_offline("a")
    clock.advance(6)
    assert scheduler.next_dispatches() == [] and scheduler.held_for("m") == "a"
    clock.advance(4)
    assert ids(scheduler.next_dispatches()) == ["m"]


def test_pinned_elsewhere_is_not_held_and_counters_survive_holds() -> None:
    """A message pinned to another relay is never held; a hold keeps attempts and failures."""
    scheduler, clock = make()
    online(scheduler, "a")
    scheduler.enqueue(work("p", pinned="b"))
    assert not scheduler.hold_for("p", "a", clock() + 30) and not scheduler.hold_for("x", "a", 1)
    scheduler.enqueue(Work("m", "acc", Priority.NORMAL, 1e9, attempts=2, failures=1))
    scheduler.hold_for("m", "a", clock() + 30)
    (dispatch,) = scheduler.next_dispatches()
    assert dispatch.attempt == 3 and scheduler.attempts("m") == 3
    assert scheduler.retry("m") and not scheduler.retry("m")  # the third failure is the last


def test_undo_dispatch_requeues_as_accepted_without_counting_the_attempt() -> None:
    """A decision that could not be recorded goes back unheld, its attempt not counted."""
    scheduler, clock = make()
    online(scheduler, "a")
    online(scheduler, "b")
    scheduler.enqueue(work("m"))
    scheduler.hold_for("m", "a", clock() + 30)
    assert [d.device_id for d in scheduler.next_dispatches()] == ["a"]
    assert not scheduler.undo_dispatch("m", "b")
    assert scheduler.undo_dispatch("m", "a") and scheduler.attempts("m") == 0
    assert scheduler.held_for("m") is None and scheduler.location("m") == ("queued", None)
    assert ids(scheduler.next_dispatches()) == ["m"]
