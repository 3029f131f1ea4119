"""Unit tests of :mod:`scheduler`: SIM readiness, SIM slot routing, failed-attempt counting and
the ``no_device`` / ``expired`` distinction. Fake clock, no event loop."""

from __future__ import annotations

from scheduler import DeviceLimits, Dispatch, Expiry, Priority, Work

from .scheduler_fakes import ROOMY, ids, make, online, work

NO_DEVICE = "no relay of the account was online and ready while it waited"


def slot_work(message_id: str, sim_slot: int | None, *, pinned: str | None = None) -> Work:
    """A message asking for ``sim_slot``."""
    return Work(message_id, "acc", Priority.NORMAL, 1e9, pinned_device=pinned, sim_slot=sim_slot)


# -- SIM readiness ------------------------------------------------------------------


def test_relay_without_a_ready_sim_gets_no_work_until_one_is_ready() -> None:
    """A relay whose only SIM is not ready is skipped; the SIM turning ready wakes the queue."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.set_sims("d1", frozenset())
    scheduler.enqueue(work("m"))
    assert scheduler.next_dispatches() == []
    scheduler.set_sims("d1", frozenset({0}))
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 1)]


def test_not_ready_relay_loses_to_a_busier_ready_one() -> None:
    """Least-loaded routing only ranks relays with a ready SIM."""
    scheduler, _ = make()
    online(scheduler, "idle")
    online(scheduler, "busy")
    scheduler.restore_acked(work("filler"), "busy")
    scheduler.set_sims("idle", frozenset())
    scheduler.set_sims("busy", frozenset({0}))
    scheduler.enqueue(work("m"))
    assert scheduler.next_dispatches() == [Dispatch("m", "busy", 1)]


def test_sim_slot_goes_only_to_a_relay_with_that_slot_ready() -> None:
    """A message for slot 1 skips the less loaded relay that has only slot 0 ready."""
    scheduler, _ = make()
    online(scheduler, "one-sim")
    online(scheduler, "dual-sim")
    scheduler.restore_acked(work("filler"), "dual-sim")
    scheduler.set_sims("one-sim", frozenset({0}))
    scheduler.set_sims("dual-sim", frozenset({0, 1}))
    scheduler.enqueue(slot_work("slot1", 1))
    scheduler.enqueue(slot_work("any", None))
    assert set(scheduler.next_dispatches()) == {
        Dispatch("slot1", "dual-sim", 1, sim_slot=1),
        Dispatch("any", "one-sim", 1),
    }


def test_pinned_message_for_a_slot_not_ready_does_not_block_its_relay() -> None:
    """A pinned message waiting for its SIM slot lets later messages for the same relay pass,
    and goes out once the slot is ready."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.set_sims("d1", frozenset({0}))
    scheduler.enqueue(slot_work("needs-1", 1, pinned="d1"))
    scheduler.enqueue(slot_work("any", None, pinned="d1"))
    assert ids(scheduler.next_dispatches()) == ["any"]
    scheduler.set_sims("d1", frozenset({0, 1}))
    assert ids(scheduler.next_dispatches()) == ["needs-1"]


def test_unreported_sims_mean_no_restriction() -> None:
    """Until a relay reports its SIMs (None), any message may go to it."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.enqueue(slot_work("m", 3))
    assert ids(scheduler.next_dispatches()) == ["m"]


# -- failed attempts ------------------------------------------------------------------


def test_max_attempts_counts_failures_not_hand_overs() -> None:
    """Hand-overs ended by the relay going away do not use up attempts; failures do."""
    scheduler, _ = make(max_attempts=2)
    online(scheduler, "d1")
    online(scheduler, "d2")
    scheduler.enqueue(work("m", pinned="d1"))
    for attempt in (1, 2, 3):
        assert scheduler.next_dispatches() == [Dispatch("m", "d1", attempt)]
        assert scheduler.set_offline("d1") == ["m"]
        scheduler.set_online("d1")
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 4)]
    assert scheduler.retry("m")  # first failure
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 5)]
    assert not scheduler.retry("m")  # second failure: the last allowed
    assert scheduler.location("m") is None and scheduler.in_flight() == 0


def test_restored_failures_count() -> None:
    """Failures recorded before a restart count toward max_attempts."""
    scheduler, _ = make(max_attempts=2)
    online(scheduler, "d1")
    scheduler.enqueue(Work("m", "acc", Priority.NORMAL, 1e9, attempts=3, failures=1))
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 4)]
    assert not scheduler.retry("m")


def test_failure_of_a_queued_message_counts() -> None:
    """A failure reported while the message is queued again (held for its relay) counts too."""
    scheduler, _ = make(max_attempts=2)
    scheduler.upsert_device("d1", "acc", limits=ROOMY)
    scheduler.enqueue(work("m", pinned="d1"))
    assert scheduler.retry("m")
    assert scheduler.location("m") == ("queued", None)
    assert not scheduler.retry("m")
    assert scheduler.location("m") is None


# -- no_device versus expired ----------------------------------------------------------


def test_no_device_only_when_no_relay_was_ever_usable_while_waiting() -> None:
    """no_device: the account had no online, enabled relay with a ready SIM at any moment of
    the wait; a relay that was online for a while (or offline now, online before) → expired."""
    scheduler, clock = make()
    scheduler.upsert_device("d1", "acc", limits=ROOMY)
    scheduler.enqueue(work("pinned-d1", expires_at=clock.now + 60, pinned="d1"))
    scheduler.enqueue(work("briefly", expires_at=clock.now + 60, pinned="d2"))
    clock.advance(10)
    online(scheduler, "d2", limits=DeviceLimits(max_in_flight=1))
    scheduler.set_offline("d2")
    clock.advance(50)
    got = {e.message_id: e for e in scheduler.expire_due()}
    assert got["briefly"] == Expiry("briefly", "expired", "pinned relay d2 was not available")
    # d2 was usable during the wait of the message pinned to d1 too.
    assert got["pinned-d1"].reason == "expired"


def test_no_device_when_relays_were_offline_disabled_or_without_a_ready_sim() -> None:
    """Offline, disabled and SIM-less relays are not available: no_device."""
    scheduler, clock = make()
    scheduler.upsert_device("offline", "acc", limits=ROOMY)
    online(scheduler, "disabled")
    scheduler.upsert_device("disabled", "acc", enabled=False, limits=ROOMY)
    online(scheduler, "no-sim")
    scheduler.set_sims("no-sim", frozenset())
    scheduler.enqueue(work("m", expires_at=clock.now + 60))
    clock.advance(60)
    assert scheduler.expire_due() == [Expiry("m", "no_device", NO_DEVICE)]


def test_relay_gone_before_the_message_came_is_no_device() -> None:
    """A relay that was online only before the message was queued does not count."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.set_offline("d1")
    scheduler.enqueue(work("m", expires_at=clock.now + 60))
    clock.advance(60)
    assert scheduler.expire_due() == [Expiry("m", "no_device", NO_DEVICE)]


def test_pinned_to_offline_relay_while_another_is_online_is_expired() -> None:
    """A pin to an offline relay expires as expired (relays were online), naming the pin."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.upsert_device("d2", "acc", limits=ROOMY)
    scheduler.enqueue(work("m", expires_at=clock.now + 60, pinned="d2"))
    assert scheduler.next_dispatches() == []
    clock.advance(60)
    assert scheduler.expire_due() == [Expiry("m", "expired", "pinned relay d2 was not available")]


def test_handed_over_message_never_expires_as_no_device() -> None:
    """A message that was dispatched once (its relay then left for good) expires as expired."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.enqueue(work("m", expires_at=clock.now + 60))
    assert ids(scheduler.next_dispatches()) == ["m"]
    scheduler.set_offline("d1")
    scheduler.finished("m")  # the gateway holds it for d1: a new record, attempts carried over
    scheduler.enqueue(Work("m", "acc", Priority.NORMAL, clock.now + 60, pinned_device="d1", attempts=1))
    clock.advance(60)
    assert scheduler.expire_due() == [Expiry("m", "expired", "pinned relay d1 was not available")]


def test_sim_slot_never_ready_is_expired_with_detail() -> None:
    """A message for a slot no relay has ready expires as expired, saying which slot."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.set_sims("d1", frozenset({0}))
    scheduler.enqueue(Work("m", "acc", Priority.NORMAL, clock.now + 60, sim_slot=1))
    assert scheduler.next_dispatches() == []
    clock.advance(60)
    assert scheduler.expire_due() == [
        Expiry("m", "expired", "no relay with SIM slot 1 ready could take it in time")
    ]
