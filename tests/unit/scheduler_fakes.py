"""Fakes and builders shared by the scheduler's unit tests.

Time is the only thing the scheduler's tests fake: :class:`FakeClock` moves
only when a test says so.
"""

from __future__ import annotations

from scheduler import DeviceLimits, Dispatch, Priority, Scheduler, Work

ROOMY = DeviceLimits(max_in_flight=100_000, per_minute=100_000)
"""Limits that never get in the way of a test about something else."""


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(clock: FakeClock | None = None, *, max_attempts: int = 3) -> tuple[Scheduler, FakeClock]:
    """A scheduler and the fake clock it reads."""
    clock = clock or FakeClock()
    return Scheduler(clock, max_attempts=max_attempts), clock


def online(
    scheduler: Scheduler, device_id: str, account_id: str = "acc", limits: DeviceLimits = ROOMY
) -> None:
    """Pair a relay with ``account_id`` and connect it."""
    scheduler.upsert_device(device_id, account_id, limits=limits)
    scheduler.set_online(device_id)


def work(
    message_id: str,
    account_id: str = "acc",
    priority: Priority = Priority.NORMAL,
    *,
    expires_at: float = 1e9,
    pinned: str | None = None,
) -> Work:
    """A message that expires far in the future unless told otherwise."""
    return Work(message_id, account_id, priority, expires_at, pinned_device=pinned)


def ids(dispatches: list[Dispatch]) -> list[str]:
    """The message ids of ``dispatches``, in order."""
    return [dispatch.message_id for dispatch in dispatches]


def drain_one_by_one(scheduler: Scheduler, count: int) -> list[Dispatch]:
    """Dispatch ``count`` messages, finishing each before deciding the next."""
    out: list[Dispatch] = []
    for _ in range(count):
        (dispatch,) = scheduler.next_dispatches(limit=1)
        scheduler.finished(dispatch.message_id)
        out.append(dispatch)
    return out
