"""What the send pipeline knows of its unfinished messages, shared by its parts.

:class:`Books` holds the one in-memory record of each unfinished message the scheduler tracks:
the scheduler's own record (routing state, the attempt and failure counters, the reclaim-grace
hold) and, beside it, the text to send (:class:`Unfinished`), plus the cancels asked of relays
and not answered yet. The accept path, the dispatch loop, the relay reports, the cancels and
the list feed (modules of :mod:`gateway.sending`) all read and change these books; the
``messages.transitions`` writer makes each change durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import msgspec

from gateway.fleet.devices import DeviceRecord
from gateway.sending.transitions import Transition
from scheduler import DeviceLimits, Priority, Scheduler, Work
from store.batcher import Batcher, ItemRejected, is_data_error
from store.messages import QueuedRow

__all__ = ["Books", "Unavailable", "Unfinished", "is_unavailable", "limits_of", "work_from_row"]


class Unavailable(Exception):
    """The database could not be reached; the loop put its decisions back and backs off."""


def is_unavailable(exc: BaseException) -> bool:
    """A failure of the connection or server (the write may succeed later), not of the data."""
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.PostgresError) and not (
        isinstance(exc, ItemRejected) or is_data_error(exc)
    )


class Unfinished(msgspec.Struct, gc=False):
    """The text and addressing of an unfinished message (its counters are the scheduler's).
    Not tracked by the garbage collector, like the scheduler's records (one per queued
    message)."""

    work: Work
    """The message as accepted (its own pin, priority, expiry)."""
    to: str
    body: str
    """What the relay sends (an OTP's real text, never the masked copy)."""
    sim_slot: int | None
    expires_at: datetime


def work_from_row(r: QueuedRow, *, attempts: int = 0, failures: int = 0) -> Work:
    """The scheduler's record of a stored message (a row of restart recovery, the scheduled
    releases or the list feed)."""
    return Work(
        message_id=r.id,
        account_id=r.account_id,
        priority=Priority(r.priority),
        expires_at=r.expires_at.timestamp(),
        pinned_device=r.pinned_device_id,
        attempts=attempts,
        sim_slot=r.sim_slot,
        failures=failures,
    )


def limits_of(device: DeviceRecord) -> DeviceLimits:
    """The scheduler's limits of a paired device."""
    return DeviceLimits(
        max_in_flight=device.effective_max_in_flight,
        per_minute=device.effective_per_minute,
        per_day=device.per_day_limit,
        sim_policy=device.sim_policy,
        sim_per_day=tuple(sorted(device.sim_limits.items())),
    )


class Books:
    """The scheduler, the texts of the messages it tracks, and the cancels awaited from relays."""

    def __init__(
        self,
        scheduler: Scheduler,
        transitions: Batcher[Transition, bool],
        *,
        clock: Callable[[], float],
        reclaim_grace: float,
    ) -> None:
        self.scheduler = scheduler
        self.transitions = transitions
        self.clock = clock
        """Seconds since the epoch (the gateway's clock)."""
        self.reclaim_grace = reclaim_grace
        self.texts: dict[str, Unfinished] = {}
        """Message id → its text, for every message the scheduler tracks (and a cancel in flight)."""
        self.cancel_requested: dict[str, tuple[str, str]] = {}
        """Message id → (relay asked to cancel it, reason), until the relay answers."""
        self.wake = asyncio.Event()
        """Set when the dispatch loop should look again."""

    def now(self) -> datetime:
        """The clock as an aware UTC datetime (what transitions and new messages are stamped with)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def queue(self, unfinished: Unfinished) -> None:
        """Track a message: its text here, its work in the scheduler's queue."""
        self.texts[unfinished.work.message_id] = unfinished
        self.scheduler.enqueue(unfinished.work)

    def forget(self, message_id: str) -> None:
        """The message finished (or left this process's care): out of the scheduler and memory."""
        self.scheduler.finished(message_id)
        self.texts.pop(message_id, None)

    def hold_for_relay(self, message_id: str, device_id: str) -> None:
        """A relay left (or the gateway restarted) before its ack of ``message_id`` was stored:
        the relay may hold the message. The scheduler offers it to that relay first — it
        de-duplicates by id, so nothing is sent twice — and after ``reclaim_grace`` seconds to
        any relay (its own deadline, see :meth:`scheduler.Scheduler.hold_for`)."""
        if message_id in self.texts:
            self.scheduler.hold_for(message_id, device_id, self.clock() + self.reclaim_grace)
            self.wake.set()

    def device_changed(self, device: DeviceRecord) -> None:
        """A device was paired, its settings changed or it said hello: the scheduler's relay."""
        self.scheduler.upsert_device(
            device.id, device.account_id, enabled=device.enabled, limits=limits_of(device)
        )
        self.wake.set()
