"""The send pipeline: accepted messages → scheduler → relays → durable status.

:class:`Pipeline` is the one object the rest of the gateway talks to; it builds and wires its
parts, each in its own module of :mod:`gateway.sending`:

* :mod:`~gateway.sending.new_message` — the accepted message and the ``messages.accept``
  group-commit writer; only after the commit is a message handed to the scheduler
  (:meth:`Pipeline.queue_committed`);
* :mod:`~gateway.sending.books` — the one in-memory record of each unfinished message (the
  scheduler's, with its counters and reclaim-grace hold, and the text beside it);
* :mod:`~gateway.sending.dispatch` — the ``pipeline.dispatch`` task: commit each ``dispatched``
  transition, then write the ``send`` frame;
* :mod:`~gateway.sending.relay_events` — online, offline, ack and report from the relays
  (the :class:`~gateway.fleet.hub.RelayEvents` the hub forwards; reports are stored before
  the relay gets its ``report_ack``);
* :mod:`~gateway.sending.cancels` — cancel while queued, or through a v1.1 relay;
* :mod:`~gateway.sending.feed` — list items read from PostgreSQL a chunk at a time, and batch
  completion;
* :mod:`~gateway.sending.held` — scheduled messages (``send_at``, quiet hours) due within the
  horizon, joining the scheduler when released.

On start, unfinished messages are loaded back from PostgreSQL (:meth:`Pipeline.load`). Time
comes from the injected ``clock`` (seconds since the epoch): expiries, scheduled releases,
reclaim graces and the times messages and transitions are stamped with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from gateway.fleet.devices import DeviceRecord, device_from_row, telemetry_from_row
from gateway.fleet.hub import RelayHub
from gateway.logs import get_logger
from gateway.recipients.completion import complete_batches
from gateway.secret import ServerSecret
from gateway.sending.books import Books, Unfinished, work_from_row
from gateway.sending.cancels import Cancels, RelayCancel
from gateway.sending.dispatch import DispatchLoop
from gateway.sending.feed import ListFeed
from gateway.sending.held import DEFAULT_HORIZON, HeldMessages
from gateway.sending.new_message import NewMessage, write_messages
from gateway.sending.relay_events import RelayHappenings
from gateway.sending.transitions import Transition
from protocol import CancelResult, Report
from scheduler import Scheduler, Work
from store import batches as batches_store
from store import messages as store
from store.batcher import Batcher
from store.devices import all_paired_devices
from store.transitions import ScheduledRow

__all__ = ["NewMessage", "Pipeline", "RelayCancel"]

log = get_logger("gateway.sending.pipeline")


def _message_of(transition: Transition) -> str:
    """The key that keeps one message's transitions in order across the writer's lanes."""
    return transition.message_id


class Pipeline:
    """Owns the scheduler and everything that moves a message; implements ``RelayEvents``."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        hub: RelayHub,
        *,
        secret: ServerSecret,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 3,
        reclaim_grace: float = 30.0,
        schedule_horizon: float = DEFAULT_HORIZON,
        list_rate: float = 200.0,
    ) -> None:
        self._pool = pool
        self._secret = secret
        self.hub = hub
        """The relay hub: live links, and the one registry of paired devices."""
        self._clock = clock
        self.scheduler = Scheduler(clock, max_attempts=max_attempts)
        self.accepts: Batcher[NewMessage, None] = Batcher(
            pool, write_messages, name="messages.accept", one_statement=True
        )
        self.transitions: Batcher[Transition, bool] = Batcher(
            pool, self._write_transitions, name="messages.transitions", key=_message_of
        )
        """Every state change; ``dispatched`` of all but low-priority work in its urgent lane."""
        self._books = Books(self.scheduler, self.transitions, clock=clock, reclaim_grace=reclaim_grace)
        self.accepted = 0
        """Messages committed and queued by this process, whatever the send path."""
        self.held: HeldMessages[Unfinished] = HeldMessages(
            pool, clock, from_row=self._held_from_row, release=self._released, horizon=schedule_horizon
        )
        """Scheduled messages due within the horizon; run its task as ``pipeline.holds``."""
        self._feed = ListFeed(pool, self._books, list_rate=list_rate)
        self._cancels = Cancels(pool, self._books, hub, self.held, self._feed)
        self._relays = RelayHappenings(self._books, hub, self._cancels)
        self._dispatch = DispatchLoop(self._books, hub, self._feed)
        hub.serve(self)  # the hub's one receiver of relay happenings, from here on

    def now(self) -> datetime:
        """The pipeline's clock as an aware UTC datetime (what new messages are stamped with)."""
        return self._books.now()

    # --- start-up -----------------------------------------------------------------------------

    async def load(self) -> int:
        """Load paired devices and every unfinished message (restart recovery); return the count."""
        books = self._books
        for row in await all_paired_devices(self._pool):
            device = device_from_row(row)
            self.hub.register_paired(device)
            books.device_changed(device)
            self._relays.declared_slots[row.id] = frozenset(s["slot"] for s in telemetry_from_row(row).sims)
        orphans: list[Transition] = []
        reclaimed = 0
        rows = await store.unfinished(self._pool)
        for r in rows:
            work = work_from_row(r, attempts=r.attempts, failures=r.failures)
            unfinished = Unfinished(work, r.to_number, self._text_of(r), r.sim_slot, r.expires_at)
            if r.batch_id is not None:
                self._feed.loaded(r.id, r.batch_id)
            device_id = r.device_id
            if r.cancel_requested_at is not None and device_id is not None:
                books.cancel_requested[r.id] = (device_id, r.cancel_reason or "api")
            if device_id is not None and self.hub.device(device_id) is None:
                if r.acked_at is not None:
                    orphans.append(Transition("failed", r.id, None, books.now(), reason="device_removed"))
                else:
                    books.queue(unfinished)
            elif device_id is not None and r.acked_at is not None:
                books.texts[r.id] = unfinished
                self.scheduler.restore_acked(work, device_id)
            elif device_id is not None:
                # Dispatched, ack not recorded: the relay may hold it.
                books.queue(unfinished)
                books.hold_for_relay(r.id, device_id)
                reclaimed += 1
            else:
                books.queue(unfinished)
        open_batches = await batches_store.open_batches(self._pool)
        async with self._pool.acquire() as conn, conn.transaction():
            if orphans:
                await self._write_transitions(conn, orphans)
            # Also completes a batch whose last item finished in a transaction that could not.
            await complete_batches(conn, [b.id for b in open_batches])
        for b in open_batches:
            self.batch_queued(b.id, b.account_id, b.not_before)
        held = await self.held.load()
        log.info(
            "pipeline.recovered",
            messages=len(rows),
            orphans=len(orphans),
            reclaimed=reclaimed,
            scheduled=held,
            batches=len(open_batches),
        )
        return len(rows)

    def _text_of(self, r: store.UnfinishedRow | ScheduledRow) -> str:
        """What the relay sends for a stored message row (an OTP's text is sealed)."""
        return r.body if r.sealed_body is None else self._secret.unseal(r.sealed_body, r.id)

    def _held_from_row(self, r: ScheduledRow) -> tuple[str, float, Unfinished]:
        """A scheduled message due within the horizon as ``(id, release time, record)``."""
        work = work_from_row(r)
        unfinished = Unfinished(work, r.to_number, self._text_of(r), r.sim_slot, r.expires_at)
        return r.id, r.not_before.timestamp(), unfinished

    def _released(self, released: list[Unfinished]) -> None:
        """Scheduled messages the database released (``scheduled → queued``): into the queue."""
        for unfinished in released:
            if self.scheduler.location(unfinished.work.message_id) is None:
                self._books.queue(unfinished)
        self._books.wake.set()

    # --- accepting ----------------------------------------------------------------------------

    async def accept(self, message: NewMessage) -> None:
        """Store ``message`` (group commit), then queue it. Returns once it is durable."""
        await self.accepts.submit(message)
        self.queue_committed(message)

    def queue_committed(self, message: NewMessage) -> None:
        """Hand an already committed message to the scheduler (a scheduled one: to the holds)."""
        self.accepted += 1
        work = Work(
            message_id=message.id,
            account_id=message.account_id,
            priority=message.priority,
            expires_at=message.expires_at.timestamp(),
            pinned_device=message.pinned_device,
            sim_slot=message.sim_slot,
        )
        unfinished = Unfinished(work, message.to, message.text, message.sim_slot, message.expires_at)
        if message.status == "scheduled" and message.not_before is not None:
            self.held.hold(message.id, message.not_before.timestamp(), unfinished)
            return
        self._books.queue(unfinished)
        self._books.wake.set()

    def batch_queued(self, batch_id: str, account_id: str, not_before: datetime | None = None) -> None:
        """A batch's items are committed (or, at start-up, still open): feed them to the scheduler
        (from ``not_before`` on, when the list was queued with ``send_at``)."""
        self._feed.batch_queued(batch_id, account_id, not_before)

    async def _write_transitions(self, conn: Any, items: Sequence[Transition]) -> list[bool]:
        """The ``messages.transitions`` writer: transitions, and the batches they complete."""
        return await self._feed.write_transitions(conn, items)

    # --- dispatching --------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (or the clock moved): run the dispatch loop and look at the holds."""
        self._books.wake.set()
        self.held.wake()

    async def run(self) -> None:
        """Background task ``pipeline.dispatch`` (see :mod:`gateway.sending.dispatch`)."""
        await self._dispatch.run()

    def queue_depth(self, account_id: str) -> int:
        """Messages of the account waiting for a relay."""
        return self.scheduler.queue_depth(account_id)

    def device_load(self, device_id: str) -> int:
        """Messages on the device that have not finished."""
        return self.scheduler.device_load(device_id)

    # --- cancelling (gateway.sending.cancels) -------------------------------------------------

    async def cancel_queued(self, message_ids: Sequence[str], reason: str) -> list[str]:
        """Cancel those still scheduled or queued; see :meth:`Cancels.cancel_queued`."""
        return await self._cancels.cancel_queued(message_ids, reason)

    async def request_relay_cancel(self, message_id: str, reason: str = "api") -> RelayCancel:
        """Ask the relay holding the message to cancel it; see :meth:`Cancels.request_relay_cancel`."""
        return await self._cancels.request_relay_cancel(message_id, reason)

    def cancel_pending(self, message_id: str) -> bool:
        """Whether the gateway asked a relay to cancel ``message_id`` and awaits its answer."""
        return self._cancels.pending(message_id)

    # --- RelayEvents (gateway.sending.relay_events) -------------------------------------------

    def device_changed(self, device: DeviceRecord) -> None:
        """A device was paired or its settings changed (the hub's registry tells us)."""
        self._books.device_changed(device)

    def device_removed(self, device_id: str) -> None:
        """A device was unpaired: its unacked work is requeued, its acked work fails."""
        books = self._books
        requeued, orphaned = self.scheduler.remove_device(device_id)
        now = books.now()
        for message_id in requeued:
            self.transitions.submit_nowait(
                Transition("requeued", message_id, device_id, now, outcome="device_removed")
            )
        for message_id in orphaned:
            books.texts.pop(message_id, None)
            self.transitions.submit_nowait(
                Transition("failed", message_id, None, now, reason="device_removed")
            )
        books.wake.set()

    def relay_online(self, device: DeviceRecord) -> None:
        """A relay said hello."""
        self._relays.relay_online(device)

    def relay_offline(self, device_id: str) -> None:
        """A relay's session ended: its unacked work is held for it during the reclaim grace."""
        self._relays.relay_offline(device_id)

    def relay_sims(self, device_id: str, declared: frozenset[int], ready: frozenset[int]) -> None:
        """A relay listed its SIM slots: it gets work only on ready ones."""
        self._relays.relay_sims(device_id, declared, ready)

    def declared_sim_slots(self, device_id: str) -> frozenset[int]:
        """SIM slots the relay listed in its last hello/heartbeat (stored ones after a restart)."""
        return self._relays.declared_slots.get(device_id, frozenset())

    def relay_acked(self, device_id: str, message_id: str) -> None:
        """A relay took a message."""
        self._relays.relay_acked(device_id, message_id)

    def held_by(self, device_id: str) -> list[tuple[str, str, str, int | None, datetime]]:
        """``(id, to, text, sim_slot, expires_at)`` of every message the relay acked and has not finished."""
        return self._relays.held_by(device_id)

    async def relay_took(self, device_id: str, message_ids: Sequence[str]) -> list[str]:
        """An SMSGate phone's pull; see :meth:`RelayHappenings.relay_took`."""
        return await self._relays.relay_took(device_id, message_ids)

    async def relay_reported(self, device_id: str, report: Report, *, detail: str | None = None) -> None:
        """A relay reported on a message; returns once the report is stored."""
        await self._relays.relay_reported(device_id, report, detail=detail)

    async def relay_cancel_result(self, device_id: str, frame: CancelResult) -> None:
        """A relay answered a ``cancel``; returns once a ``cancelled`` is stored."""
        await self._cancels.relay_cancel_result(device_id, frame)
