"""The send pipeline: accepted messages → scheduler → relays → durable status.

* ``accept`` group-commits new messages and only then hands them to the in-memory
  :class:`scheduler.Scheduler`.
* The dispatch task (``pipeline.dispatch``) asks the scheduler for decisions, commits each
  ``dispatched`` transition, and only then writes the ``send`` frame to the relay, so a crash
  never leaves a message on a phone that the database does not know about.
* Relay happenings (online, offline, ack, report) arrive through the :class:`RelayEvents`
  interface; reports are stored before the relay gets its ``report_ack``.
* On start, unfinished messages are loaded back from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from websockets.exceptions import ConnectionClosed

from gateway.logs import get_logger
from gateway.relay.devices import DeviceRecord, device_from_row
from gateway.relay.hub import RelayHub
from gateway.secret import ServerSecret
from gateway.timefmt import utcnow
from gateway.transitions import Kind, Transition, write_transitions
from protocol import Report
from scheduler import DeviceLimits, Priority, Scheduler, Work, is_retryable
from store import queries as q
from store.batcher import Batcher
from store.database import DATABASE_DOWN

__all__ = ["NewMessage", "Pipeline"]

log = get_logger("gateway.pipeline")

DISPATCH_BATCH = 500
STORE_RETRY_DELAY = 0.5
"""Seconds the dispatch loop waits after the database refused a write, before trying again."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message ready to be stored."""

    id: str
    account_id: str
    kind: str
    to: str
    body: str
    encoding: str
    segments: int
    priority: Priority
    pinned_device: str | None
    sim_slot: int | None
    metadata: dict[str, Any] | None
    expires_at: datetime
    queued_at: datetime
    secret_text: str | None = None
    """The text to send when ``body`` is only a display copy (an OTP with its code masked).
    Kept in memory; stored only as ``sealed_body``."""
    sealed_body: bytes | None = None

    @property
    def text(self) -> str:
        """What the relay sends."""
        return self.secret_text if self.secret_text is not None else self.body

    def row(self) -> tuple[Any, ...]:
        """Values in ``MESSAGE_INSERT`` order."""
        return (
            self.id,
            self.account_id,
            self.kind,
            self.to,
            self.body,
            self.encoding,
            self.segments,
            int(self.priority),
            self.pinned_device,
            self.sim_slot,
            json.dumps(self.metadata) if self.metadata is not None else None,
            self.expires_at,
            self.queued_at,
            self.sealed_body,
        )


@dataclass(slots=True)
class _Payload:
    """What the pipeline keeps in memory while a message is unfinished."""

    work: Work
    """The message as accepted (its own pin, priority, expiry)."""
    to: str
    body: str
    sim_slot: int | None
    expires_at: datetime
    attempts: int = 0
    """Dispatches so far."""
    held_for: str | None = None
    """The relay that may already hold the message (its ack was lost), while we wait for it."""
    held_until: float = 0.0


async def write_messages(conn: Any, items: Sequence[NewMessage]) -> list[None]:
    """Insert a batch of new messages with one statement."""
    columns = list(zip(*(m.row() for m in items), strict=True))
    await conn.execute(q.MESSAGE_INSERT_MANY, *[list(c) for c in columns])
    return [None] * len(items)


def _limits(device: DeviceRecord) -> DeviceLimits:
    return DeviceLimits(
        max_in_flight=device.effective_max_in_flight,
        per_minute=device.effective_per_minute,
        per_day=device.per_day_limit,
    )


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
    ) -> None:
        self._pool = pool
        self._secret = secret
        self.hub = hub
        self._clock = clock
        self.scheduler = Scheduler(clock, max_attempts=max_attempts)
        self.devices: dict[str, DeviceRecord] = {}
        self._payloads: dict[str, _Payload] = {}
        self.accepts: Batcher[NewMessage, None] = Batcher(pool, write_messages, name="messages.accept")
        self.transitions: Batcher[Transition, bool] = Batcher(
            pool, write_transitions, name="messages.transitions"
        )
        self._wake = asyncio.Event()
        self._reclaim_grace = reclaim_grace

    # --- start-up -----------------------------------------------------------------------------

    async def load(self) -> int:
        """Load paired devices and every unfinished message (restart recovery); return the count."""
        for row in await self._pool.fetch(q.DEVICE_ALL_PAIRED):
            self.device_changed(device_from_row(row))
        orphans: list[Transition] = []
        reclaimed = 0
        rows = await self._pool.fetch(q.MESSAGE_UNFINISHED)
        for r in rows:
            work = Work(
                message_id=r["id"],
                account_id=r["account_id"],
                priority=Priority(r["priority"]),
                expires_at=r["expires_at"].timestamp(),
                pinned_device=r["pinned_device_id"],
                attempts=r["attempts"],
            )
            body = r["body"] if r["sealed_body"] is None else self._secret.unseal(r["sealed_body"], r["id"])
            self._payloads[r["id"]] = _Payload(
                work, r["to_number"], body, r["sim_slot"], r["expires_at"], attempts=r["attempts"]
            )
            device_id = r["device_id"]
            if device_id is not None and device_id not in self.devices:
                if r["acked_at"] is not None:
                    self._payloads.pop(r["id"])
                    orphans.append(Transition("failed", r["id"], None, utcnow(), reason="device_removed"))
                else:
                    self.scheduler.enqueue(work)
            elif device_id is not None and r["acked_at"] is not None:
                self.scheduler.restore_acked(work, device_id)
            elif device_id is not None:
                # Dispatched, ack not recorded: the relay may hold it.
                self._hold_for_relay(r["id"], device_id)
                reclaimed += 1
            else:
                self.scheduler.enqueue(work)
        if orphans:
            async with self._pool.acquire() as conn, conn.transaction():
                await write_transitions(conn, orphans)
        log.info("pipeline.recovered", messages=len(rows), orphans=len(orphans), reclaimed=reclaimed)
        return len(rows)

    def _hold_for_relay(self, message_id: str, device_id: str) -> None:
        """A relay left (or the gateway restarted) before its ack of ``message_id`` was stored:
        the relay may hold the message. Offer it to that relay first — it de-duplicates by id, so
        nothing is sent twice — and after ``reclaim_grace`` seconds to any relay."""
        payload = self._payloads.get(message_id)
        if payload is None or payload.work.pinned_device not in (None, device_id):
            return
        if self.scheduler.location(message_id) is not None:
            self.scheduler.finished(message_id)
        self.scheduler.enqueue(
            dataclasses.replace(payload.work, pinned_device=device_id, attempts=payload.attempts)
        )
        payload.held_for, payload.held_until = device_id, self._clock() + self._reclaim_grace
        asyncio.get_running_loop().call_later(self._reclaim_grace, self._release, message_id)

    def _release(self, message_id: str) -> None:
        """Grace over: if still waiting for its old relay, the message may go to any relay."""
        payload = self._payloads.get(message_id)
        if payload is None or payload.held_until > self._clock():
            return
        payload.held_for = None
        location = self.scheduler.location(message_id)
        if location is not None and location[0] == "queued":
            self.scheduler.finished(message_id)
            self.scheduler.enqueue(dataclasses.replace(payload.work, attempts=payload.attempts))
            self._wake.set()

    # --- accepting ----------------------------------------------------------------------------

    async def accept(self, message: NewMessage) -> None:
        """Store ``message`` (group commit), then queue it. Returns once it is durable."""
        await self.accepts.submit(message)
        self.queue_committed(message)

    def queue_committed(self, message: NewMessage) -> None:
        """Hand an already committed message to the scheduler."""
        work = Work(
            message_id=message.id,
            account_id=message.account_id,
            priority=message.priority,
            expires_at=message.expires_at.timestamp(),
            pinned_device=message.pinned_device,
        )
        self._payloads[message.id] = _Payload(
            work, message.to, message.text, message.sim_slot, message.expires_at
        )
        self.scheduler.enqueue(work)
        self._wake.set()

    def queue_depth(self, account_id: str) -> int:
        """Messages of the account waiting for a relay."""
        return self.scheduler.queue_depth(account_id)

    # --- devices ------------------------------------------------------------------------------

    def device_changed(self, device: DeviceRecord) -> None:
        """A device was paired or its settings changed."""
        self.devices[device.id] = device
        self.scheduler.upsert_device(
            device.id, device.account_id, enabled=device.enabled, limits=_limits(device)
        )
        self._wake.set()

    def device_removed(self, device_id: str) -> None:
        """A device was unpaired: its unacked work is requeued, its acked work fails."""
        self.devices.pop(device_id, None)
        requeued, orphaned = self.scheduler.remove_device(device_id)
        now = utcnow()
        for message_id in requeued:
            self.transitions.submit_nowait(
                Transition("requeued", message_id, device_id, now, outcome="device_removed")
            )
        for message_id in orphaned:
            self._payloads.pop(message_id, None)
            self.transitions.submit_nowait(
                Transition("failed", message_id, None, now, reason="device_removed")
            )
        self._wake.set()

    def device_load(self, device_id: str) -> int:
        """Messages on the device that have not finished."""
        return self.scheduler.device_load(device_id)

    # --- RelayEvents --------------------------------------------------------------------------

    def relay_online(self, device: DeviceRecord) -> None:
        """A relay said hello."""
        self.device_changed(device)
        self.scheduler.set_online(device.id)
        self._wake.set()

    def relay_offline(self, device_id: str) -> None:
        """A relay's session ended: what it never acknowledged goes back to the queue, held for
        that relay during the grace period (its ack may have been lost with the socket)."""
        requeued = self.scheduler.set_offline(device_id)
        now = utcnow()
        for message_id in requeued:
            self.transitions.submit_nowait(
                Transition("requeued", message_id, device_id, now, outcome="relay_offline")
            )
            self._hold_for_relay(message_id, device_id)
        if requeued:
            log.info("pipeline.requeued", device_id=device_id, messages=len(requeued))
        self._wake.set()

    def relay_acked(self, device_id: str, message_id: str) -> None:
        """A relay took a message."""
        if self.scheduler.acked(message_id, device_id):
            self.transitions.submit_nowait(Transition("acked", message_id, device_id, utcnow()))

    async def relay_reported(self, device_id: str, report: Report) -> None:
        """A relay reported on a message; returns once the report is stored."""
        message_id, now = report.id, utcnow()
        location = self.scheduler.location(message_id)
        payload = self._payloads.get(message_id)
        held_here = location is not None and (
            location[1] == device_id or (payload is not None and payload.held_for == device_id)
        )
        if report.status == "failed":
            reason = report.reason or "generic_failure"
            if held_here and is_retryable(reason):
                if self.scheduler.retry(message_id):
                    await self.transitions.submit(
                        Transition("requeued", message_id, device_id, now, outcome="failed", reason=reason)
                    )
                    self._wake.set()
                    return
                self._payloads.pop(message_id, None)
            elif held_here:
                self.scheduler.finished(message_id)
                self._payloads.pop(message_id, None)
            await self.transitions.submit(Transition("failed", message_id, device_id, now, reason=reason))
        else:
            if held_here:
                self.scheduler.finished(message_id)
                self._payloads.pop(message_id, None)
                self._wake.set()
            kind: Kind = "sent" if report.status == "sent" else "delivered"
            await self.transitions.submit(Transition(kind, message_id, device_id, now))

    # --- dispatching --------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed: run the dispatch loop."""
        self._wake.set()

    async def run(self) -> None:
        """Background task ``pipeline.dispatch``: expire, decide, record, send; sleep until the
        next event or the next time-based change the scheduler knows of."""
        while True:
            wakeup = self.scheduler.next_wakeup()
            timeout = None if wakeup is None else max(0.0, wakeup - self._clock())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._expire()
                while await self._dispatch_once():
                    pass
            except DATABASE_DOWN as exc:  # the work is back in the scheduler: retry shortly
                log.warning("pipeline.database_unavailable", error=repr(exc))
                await asyncio.sleep(STORE_RETRY_DELAY)
                self._wake.set()

    async def _expire(self) -> None:
        expired = self.scheduler.expire_due()
        if not expired:
            return
        now = utcnow()
        results = await asyncio.gather(
            *(
                self.transitions.submit(Transition("failed", e.message_id, None, now, reason=e.reason))
                for e in expired
            ),
            return_exceptions=True,
        )
        error: BaseException | None = None
        for e, result in zip(expired, results, strict=True):
            payload = self._payloads.get(e.message_id)
            if not isinstance(result, BaseException):
                self._payloads.pop(e.message_id, None)
            elif payload is not None:  # not stored: track it again, it expires on the next pass
                error = result
                self.scheduler.enqueue(dataclasses.replace(payload.work, attempts=payload.attempts))
        if error is not None:
            raise error

    async def _dispatch_once(self) -> bool:
        decisions = self.scheduler.next_dispatches(DISPATCH_BATCH)
        if not decisions:
            return False
        for decision in decisions:
            payload = self._payloads.get(decision.message_id)
            if payload is not None:  # before any await: a relay may leave while we commit
                payload.attempts, payload.held_for = decision.attempt, None
        now = utcnow()
        stored = await asyncio.gather(
            *(
                self.transitions.submit(
                    Transition("dispatched", d.message_id, d.device_id, now, attempt=d.attempt)
                )
                for d in decisions
            ),
            return_exceptions=True,
        )
        touched = set()
        error: BaseException | None = None
        for decision, ok in zip(decisions, stored, strict=True):
            payload = self._payloads.get(decision.message_id)
            if isinstance(ok, BaseException):  # not stored, so never sent: back to the queue
                error = ok
                self.scheduler.finished(decision.message_id)
                if payload is not None:
                    payload.attempts = decision.attempt - 1
                    self.scheduler.enqueue(dataclasses.replace(payload.work, attempts=payload.attempts))
                continue
            if not ok or payload is None:
                self.scheduler.finished(decision.message_id)
                continue
            conn = self.hub.connection(decision.device_id)
            if conn is None or conn.session.close_code is not None:
                continue  # the relay left meanwhile: relay_offline has requeued it
            conn.session.send_message(
                id=decision.message_id,
                to=payload.to,
                message=payload.body,
                sim_slot=payload.sim_slot,
                expires_at=payload.expires_at,
            )
            touched.add(conn)
        for conn in touched:
            try:
                await conn.flush()
            except ConnectionClosed:
                pass  # the listener notices and reports the relay offline
        if error is not None:
            raise error
        return len(decisions) == DISPATCH_BATCH
