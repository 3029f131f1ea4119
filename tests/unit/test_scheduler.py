"""Unit tests of :mod:`scheduler`: ordering, fairness, routing, relay connectivity, retries.

Limits, expiry and cost are in ``test_scheduler_limits.py``. The scheduler is
pure, so every test drives it with a fake clock and needs no event loop.
"""

from __future__ import annotations

import pytest

from scheduler import DeviceLimits, Dispatch, Expiry, Priority, is_retryable

from .scheduler_fakes import ROOMY, drain_one_by_one, ids, make, online, work

# -- ordering -----------------------------------------------------------------


def test_priority_order_within_account() -> None:
    """OTP goes before HIGH before NORMAL before LOW, whatever the enqueue order."""
    scheduler, _ = make()
    online(scheduler, "d1")
    for priority in (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.OTP):
        scheduler.enqueue(work(priority.name, priority=priority))
    assert ids(scheduler.next_dispatches()) == ["OTP", "HIGH", "NORMAL", "LOW"]


def test_fifo_within_priority() -> None:
    """Messages of one priority leave in enqueue order."""
    scheduler, _ = make()
    online(scheduler, "d1")
    for n in range(20):
        scheduler.enqueue(work(f"m{n}"))
    assert ids(scheduler.next_dispatches()) == [f"m{n}" for n in range(20)]


def test_requeued_message_keeps_its_place() -> None:
    """A message returned by an offline relay goes out before later messages of its priority."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=1))
    for name in ("a", "b", "c"):
        scheduler.enqueue(work(name))
    assert ids(scheduler.next_dispatches()) == ["a"]
    assert scheduler.set_offline("d1") == ["a"]
    online(scheduler, "d2", limits=DeviceLimits(max_in_flight=1))
    assert scheduler.next_dispatches() == [Dispatch("a", "d2", 2)]


def test_big_list_does_not_starve_other_account() -> None:
    """A 10k LOW list of one account lets another account's few messages through at once."""
    scheduler, _ = make()
    online(scheduler, "bulk-phone", "bulk")
    online(scheduler, "shop-phone", "shop")
    for n in range(10_000):
        scheduler.enqueue(work(f"list{n}", "bulk", Priority.LOW))
    for n in range(3):
        scheduler.enqueue(work(f"shop{n}", "shop"))
    first = ids(scheduler.next_dispatches(limit=6))
    assert {"shop0", "shop1", "shop2"} <= set(first)


def test_round_robin_persists_across_calls() -> None:
    """With limit=1 per call, two busy accounts alternate instead of one running first."""
    scheduler, _ = make()
    online(scheduler, "pa", "a")
    online(scheduler, "pb", "b")
    for n in range(3):
        scheduler.enqueue(work(f"a{n}", "a"))
        scheduler.enqueue(work(f"b{n}", "b"))
    order = [scheduler.next_dispatches(limit=1)[0].message_id[0] for _ in range(6)]
    assert order in (list("ababab"), list("bababa"))


def test_bulk_never_delays_otp_or_high() -> None:
    """OTP and HIGH enqueued behind a large LOW backlog take the next free slot: LOW work
    leaves a fifth of the in-flight window free, so the first of them goes at once."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=5, per_minute=100_000))
    for n in range(1_000):
        scheduler.enqueue(work(f"low{n}", priority=Priority.LOW))
    assert len(scheduler.next_dispatches()) == 4
    scheduler.enqueue(work("high", priority=Priority.HIGH))
    scheduler.enqueue(work("otp", priority=Priority.OTP))
    assert ids(scheduler.next_dispatches()) == ["otp"]
    scheduler.finished("low0")
    scheduler.finished("low1")
    assert ids(scheduler.next_dispatches()) == ["high"]


# -- routing ------------------------------------------------------------------


def test_least_loaded_spreads_over_five_relays() -> None:
    """Ten messages over five equal relays put two on each."""
    scheduler, _ = make()
    for n in range(5):
        online(scheduler, f"d{n}")
    for n in range(10):
        scheduler.enqueue(work(f"m{n}"))
    scheduler.next_dispatches()
    assert [scheduler.device_load(f"d{n}") for n in range(5)] == [2] * 5


def test_least_loaded_prefers_the_emptier_relay() -> None:
    """A relay carrying acked work is passed over for an idle one."""
    scheduler, _ = make()
    online(scheduler, "busy")
    online(scheduler, "idle")
    scheduler.restore_acked(work("old"), "busy")
    scheduler.enqueue(work("new"))
    assert scheduler.next_dispatches() == [Dispatch("new", "idle", 1)]


def test_ties_rotate_between_relays() -> None:
    """Equal relays take turns when each message finishes before the next is decided."""
    scheduler, clock = make()
    for n in range(3):
        online(scheduler, f"d{n}")
    for n in range(9):
        scheduler.enqueue(work(f"m{n}"))
    devices = []
    for _ in range(9):
        clock.advance(30)
        devices.append(drain_one_by_one(scheduler, 1)[0].device_id)
    assert devices[:3] == devices[3:6] == devices[6:]
    assert sorted(devices[:3]) == ["d0", "d1", "d2"]


def test_disabled_relay_is_never_chosen() -> None:
    """Work waits rather than go to a disabled relay, and flows once it is enabled."""
    scheduler, _ = make()
    scheduler.upsert_device("d1", "acc", enabled=False, limits=ROOMY)
    scheduler.set_online("d1")
    scheduler.enqueue(work("m"))
    assert scheduler.next_dispatches() == []
    scheduler.upsert_device("d1", "acc", enabled=True, limits=ROOMY)
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 1)]


def test_relays_of_other_accounts_are_never_used() -> None:
    """An account without relays of its own gets nothing even when others have room."""
    scheduler, _ = make()
    online(scheduler, "theirs", "other")
    scheduler.enqueue(work("m", "acc"))
    assert scheduler.next_dispatches() == []


def test_relay_cannot_change_account() -> None:
    """Upserting a known relay under another account is refused."""
    scheduler, _ = make()
    scheduler.upsert_device("d1", "acc")
    with pytest.raises(ValueError, match="belongs to account"):
        scheduler.upsert_device("d1", "other")


def test_pinned_message_waits_without_blocking_others() -> None:
    """A message pinned to an offline relay waits; the account's other work goes meanwhile."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.upsert_device("d2", "acc", limits=ROOMY)
    scheduler.enqueue(work("pinned", priority=Priority.OTP, pinned="d2"))
    scheduler.enqueue(work("free", priority=Priority.LOW))
    assert scheduler.next_dispatches() == [Dispatch("free", "d1", 1)]
    assert scheduler.location("pinned") == ("queued", None)
    scheduler.set_online("d2")
    assert scheduler.next_dispatches() == [Dispatch("pinned", "d2", 1)]


def test_pinned_and_unpinned_compete_by_priority_and_seq() -> None:
    """On a single relay, pinned and unpinned messages interleave by (priority, enqueue order)."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.enqueue(work("u1"))
    scheduler.enqueue(work("p1", pinned="d1"))
    scheduler.enqueue(work("u2"))
    scheduler.enqueue(work("p-otp", priority=Priority.OTP, pinned="d1"))
    assert ids(scheduler.next_dispatches()) == ["p-otp", "u1", "p1", "u2"]


# -- relay connectivity ---------------------------------------------------------


def test_offline_returns_only_unacked_and_acked_stay_bound() -> None:
    """Going offline requeues unacknowledged messages; acknowledged ones stay on the relay."""
    scheduler, _ = make()
    online(scheduler, "d1")
    for name in ("a", "b", "c"):
        scheduler.enqueue(work(name))
    scheduler.next_dispatches()
    assert scheduler.acked("b", "d1")
    assert scheduler.set_offline("d1") == ["a", "c"]
    assert scheduler.location("a") == ("queued", None)
    assert scheduler.location("b") == ("acked", "d1")
    assert scheduler.device_load("d1") == 1
    assert scheduler.queue_depth("acc") == 2
    assert scheduler.in_flight() == 1


def test_requeued_after_offline_may_return_to_same_relay() -> None:
    """Messages an offline relay never acknowledged go back to it when it reconnects."""
    scheduler, _ = make()
    online(scheduler, "d1")
    scheduler.enqueue(work("m"))
    scheduler.next_dispatches()
    scheduler.set_offline("d1")
    scheduler.set_online("d1")
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 2)]


def test_ack_only_from_the_assigned_relay() -> None:
    """An ack from another relay, a repeated ack or an ack of an unknown message changes nothing."""
    scheduler, _ = make()
    online(scheduler, "d1")
    online(scheduler, "d2")
    scheduler.enqueue(work("m"))
    (dispatch,) = scheduler.next_dispatches()
    other = "d2" if dispatch.device_id == "d1" else "d1"
    assert not scheduler.acked("m", other)
    assert scheduler.acked("m", dispatch.device_id)
    assert not scheduler.acked("m", dispatch.device_id)
    assert not scheduler.acked("nope", "d1")
    assert scheduler.location("m") == ("acked", dispatch.device_id)


def test_remove_device_requeues_unacked_and_orphans_acked() -> None:
    """Unpairing returns (requeued unacked, orphaned acked) and forgets the orphans."""
    scheduler, _ = make()
    online(scheduler, "d1")
    for name in ("a", "b"):
        scheduler.enqueue(work(name))
    scheduler.next_dispatches()
    scheduler.acked("b", "d1")
    assert scheduler.remove_device("d1") == (["a"], ["b"])
    assert scheduler.location("b") is None
    assert scheduler.location("a") == ("queued", None)
    assert scheduler.device_load("d1") == 0
    assert scheduler.in_flight() == 0
    assert scheduler.remove_device("d1") == ([], [])
    online(scheduler, "d2")
    assert scheduler.next_dispatches() == [Dispatch("a", "d2", 2)]


def test_restore_acked_counts_as_load_and_times_out() -> None:
    """A message restored as acked fills a slot until reported, and expires as relay_timeout."""
    scheduler, clock = make()
    online(scheduler, "d1", limits=DeviceLimits(max_in_flight=1))
    scheduler.restore_acked(work("old", expires_at=clock.now + 10), "d1")
    scheduler.enqueue(work("new", expires_at=clock.now + 100))
    assert scheduler.next_dispatches() == []
    assert scheduler.location("old") == ("acked", "d1")
    clock.advance(10)
    assert scheduler.expire_due() == [Expiry("old", "relay_timeout", "acknowledged by d1, never reported")]
    assert scheduler.next_dispatches() == [Dispatch("new", "d1", 1)]


# -- retries --------------------------------------------------------------------


def test_retry_avoids_the_relay_that_failed() -> None:
    """A retried message goes to another relay of the account, never back to the failing one."""
    scheduler, _ = make()
    online(scheduler, "d1")
    online(scheduler, "d2")
    scheduler.restore_acked(work("filler"), "d2")  # make d1 the least loaded
    scheduler.enqueue(work("m"))
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 1)]
    assert scheduler.retry("m")
    assert scheduler.next_dispatches() == [Dispatch("m", "d2", 2)]


def test_retry_with_no_other_relay_waits_and_expires() -> None:
    """With only the failing relay left, a retried message waits and expires as expired, not
    no_device: a relay was online."""
    scheduler, clock = make()
    online(scheduler, "d1")
    scheduler.enqueue(work("m", expires_at=clock.now + 60))
    scheduler.next_dispatches()
    assert scheduler.retry("m")
    assert scheduler.next_dispatches() == []
    clock.advance(60)
    assert scheduler.expire_due() == [Expiry("m", "expired", "no relay could take it in time")]


def test_retry_of_pinned_message_stays_on_its_relay() -> None:
    """A pinned message has only its own relay, so it retries there."""
    scheduler, _ = make()
    online(scheduler, "d1")
    online(scheduler, "d2")
    scheduler.enqueue(work("m", pinned="d1"))
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 1)]
    assert scheduler.retry("m")
    assert scheduler.next_dispatches() == [Dispatch("m", "d1", 2)]


def test_retry_gives_up_after_max_attempts() -> None:
    """After max_attempts dispatches, retry returns False and forgets the message."""
    scheduler, _ = make(max_attempts=3)
    for n in range(4):
        online(scheduler, f"d{n}")
    scheduler.enqueue(work("m"))
    attempts = []
    for _ in range(3):
        (dispatch,) = scheduler.next_dispatches()
        attempts.append(dispatch.attempt)
        retried = scheduler.retry("m")
    assert attempts == [1, 2, 3]
    assert not retried
    assert scheduler.location("m") is None
    assert scheduler.in_flight() == 0
    assert not scheduler.retry("m")


def test_unknown_and_duplicate_messages() -> None:
    """Reports about unknown messages return False; a duplicate id is refused."""
    scheduler, _ = make()
    assert not scheduler.finished("nope")
    assert not scheduler.retry("nope")
    assert scheduler.location("nope") is None
    scheduler.enqueue(work("m"))
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.enqueue(work("m"))


def test_is_retryable() -> None:
    """Transient radio failures are retryable; bad destinations and expiry are final."""
    for reason in (
        "generic_failure",
        "no_service",
        "radio_off",
        "null_pdu",
        "limit_exceeded",
        "device_rejected",
    ):
        assert is_retryable(reason)
    for reason in ("invalid_destination", "expired", "whatever"):
        assert not is_retryable(reason)
