"""Unit tests of SIM selection in the scheduler: the relay's SIM policy (default, round_robin,
least_used) picks the SIM of a message that names none, per-SIM daily limits move work to
another SIM or relay and open again with time, and a message's own sim_slot always wins."""

from __future__ import annotations

import pytest

from scheduler import DeviceLimits, Dispatch, Priority, Scheduler, Work

from .scheduler_fakes import make, online


def limits(policy: str = "default", **per_sim: int) -> DeviceLimits:
    """Roomy limits with a SIM policy and ``s0=N``-style per-SIM daily limits."""
    return DeviceLimits(
        max_in_flight=1000,
        per_minute=1000,
        sim_policy=policy,
        sim_per_day=tuple(sorted((int(k[1:]), v) for k, v in per_sim.items())),
    )


def slots(dispatches: list[Dispatch]) -> list[int | None]:
    """The SIM slot of each dispatch."""
    return [d.sim_slot for d in dispatches]


def enqueue(scheduler: Scheduler, count: int, sim_slot: int | None = None, prefix: str = "m") -> None:
    """``count`` messages of account ``acc``."""
    for n in range(count):
        scheduler.enqueue(Work(f"{prefix}{n}", "acc", Priority.NORMAL, 1e9, sim_slot=sim_slot))


def test_default_policy_lets_the_phone_choose() -> None:
    """Without per-SIM limits the default policy names no SIM; a message's own slot is kept."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=limits())
    scheduler.set_sims("d1", frozenset({0, 1}))
    enqueue(scheduler, 2)
    enqueue(scheduler, 1, sim_slot=1, prefix="own")
    assert slots(scheduler.next_dispatches()) == [None, None, 1]


def test_round_robin_takes_ready_sims_in_turn() -> None:
    """round_robin alternates over the ready SIMs and skips one that stops being ready."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=limits("round_robin"))
    scheduler.set_sims("d1", frozenset({0, 1, 2}))
    enqueue(scheduler, 4)
    assert slots(scheduler.next_dispatches()) == [0, 1, 2, 0]
    scheduler.set_sims("d1", frozenset({0, 2}))
    enqueue(scheduler, 3, prefix="n")
    assert slots(scheduler.next_dispatches()) == [2, 0, 2]


def test_least_used_balances_by_the_last_day() -> None:
    """least_used picks the SIM with the fewest dispatches in 24 h, counting messages that
    asked for a slot themselves."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=limits("least_used"))
    scheduler.set_sims("d1", frozenset({0, 1}))
    enqueue(scheduler, 3, sim_slot=0, prefix="own")
    enqueue(scheduler, 4)
    assert slots(scheduler.next_dispatches()) == [0, 0, 0, 1, 1, 1, 0]
    assert scheduler.sim_usage("d1") == {0: 4, 1: 3}


def test_per_sim_limit_overflows_then_opens_with_time() -> None:
    """The default policy with limits fills SIM 0 then SIM 1; with both used up the relay takes
    nothing, the scheduler wakes when a SIM's day window opens, and sending resumes."""
    scheduler, clock = make()
    online(scheduler, "d1", limits=limits(s0=2, s1=1))
    scheduler.set_sims("d1", frozenset({0, 1}))
    enqueue(scheduler, 5)
    assert slots(scheduler.next_dispatches()) == [0, 0, 1]
    assert scheduler.next_dispatches() == []
    wakeup = scheduler.next_wakeup()
    assert wakeup is not None and clock.now + 86_400 <= wakeup <= clock.now + 86_400 + 60
    clock.now = wakeup
    assert slots(scheduler.next_dispatches()) == [0, 0]


def test_a_used_up_sim_sends_the_message_elsewhere() -> None:
    """A message for SIM 0 skips the relay whose SIM 0 is at its limit for one whose is not;
    an unlimited slot is never used up."""
    scheduler, _ = make()
    online(scheduler, "a", limits=limits(s0=1))
    online(scheduler, "b", limits=limits())
    scheduler.set_sims("a", frozenset({0, 1}))
    scheduler.set_sims("b", frozenset({0}))
    scheduler.enqueue(Work("first", "acc", Priority.NORMAL, 1e9, pinned_device="a", sim_slot=0))
    assert [(d.device_id, d.sim_slot) for d in scheduler.next_dispatches()] == [("a", 0)]
    scheduler.finished("first")
    enqueue(scheduler, 1, sim_slot=0, prefix="zero")
    enqueue(scheduler, 1, sim_slot=1, prefix="one")
    placed = sorted((d.device_id, d.sim_slot) for d in scheduler.next_dispatches())
    assert placed == [("a", 1), ("b", 0)]


def test_unreported_sims_and_bad_settings() -> None:
    """A relay that never reported its SIMs sends with per-SIM limits set (the phone picks);
    unknown policies and limits below 1 are refused."""
    scheduler, _ = make()
    online(scheduler, "d1", limits=limits("round_robin", s0=1))
    enqueue(scheduler, 2)
    assert slots(scheduler.next_dispatches()) == [None, None]
    with pytest.raises(ValueError):
        DeviceLimits(sim_policy="random")
    with pytest.raises(ValueError):
        DeviceLimits(sim_per_day=((0, 0),))
