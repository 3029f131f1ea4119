"""The send pipeline: accepted messages → scheduler → relays → durable status.

* ``accept`` group-commits new messages and only then hands them to the in-memory
  :class:`scheduler.Scheduler`.
* The dispatch task (``pipeline.dispatch``) asks the scheduler for decisions, commits each
  ``dispatched`` transition, and only then writes the ``send`` frame to the relay, so a crash
  never leaves a message on a phone that the database does not know about.
* Relay happenings (online, offline, ack, report) arrive through the :class:`RelayEvents`
  interface; reports are stored before the relay gets its ``report_ack``.
* On start, unfinished messages are loaded back from PostgreSQL.
* Scheduled messages (``send_at``, quiet hours) wait in :class:`~gateway.sending.held.HeldMessages`
  (only those due within its horizon are in memory) and join the scheduler when released.
* Cancel: a message still scheduled or queued is cancelled in the database and forgotten
  (:meth:`Pipeline.cancel_queued`); one on a relay that speaks protocol v1.1 gets a ``cancel``
  frame (:meth:`Pipeline.request_relay_cancel`) and ends ``cancelled`` when the relay confirms.
* Time comes from the injected ``clock`` (seconds since the epoch): expiries, scheduled
  releases, quiet hours and the times new messages are stamped with.
* List items (messages of a batch, :mod:`gateway.recipients.batches`) are fed to the scheduler
  from PostgreSQL a chunk at a time while their account has little queued (``_feed_batches``),
  so a backlog of a million items holds about ``FEED_CHUNK`` of them in memory per batch;
  ``cancel_queued`` cancels queued messages; the transaction that finishes a batch's last
  item completes the batch (``batch.completed``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from websockets.exceptions import ConnectionClosed

from gateway.fleet.devices import DeviceRecord, device_from_row, telemetry_from_row
from gateway.fleet.hub import RelayHub
from gateway.fleet.link import CancelOutcome
from gateway.logs import get_logger
from gateway.recipients.completion import complete_batches
from gateway.secret import ServerSecret
from gateway.sending.held import DEFAULT_HORIZON, HeldMessages
from gateway.sending.transitions import Kind, Transition, write_transitions
from gateway.timefmt import utcnow
from protocol import CancelResult, ProtocolStateError, Report
from scheduler import DeviceLimits, Dispatch, Expiry, Priority, Scheduler, Work, is_retryable
from store import batches as batches_store
from store import queries as q
from store.batcher import Batcher, ItemRejected, is_data_error
from store.devices import all_paired_devices

__all__ = ["NewMessage", "Pipeline", "RelayCancel"]

log = get_logger("gateway.sending.pipeline")

DISPATCH_BATCH = 500
FEED_CHUNK = 1000
"""List items read into the scheduler at a time at most, when their account has fewer queued."""
UNAVAILABLE_RETRY = 1.0
"""Seconds the dispatch loop waits before retrying when the database cannot be reached."""


class _Unavailable(Exception):
    """The database could not be reached; the loop put its decisions back and backs off."""


def _is_unavailable(exc: BaseException) -> bool:
    """A failure of the connection or server (the write may succeed later), not of the data."""
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.PostgresError) and not (
        isinstance(exc, ItemRejected) or is_data_error(exc)
    )


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
    status: Literal["queued", "scheduled"] = "queued"
    """``scheduled``: held until ``not_before`` (see :mod:`gateway.sending.held`)."""
    send_at: datetime | None = None
    """The time the request asked for, if any."""
    not_before: datetime | None = None
    """When a scheduled message joins the queue: ``send_at``, or the next opening of the
    account's sending window (quiet hours)."""
    hold_reason: Literal["send_at", "quiet_hours"] | None = None

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
            self.metadata,
            self.expires_at,
            self.queued_at,
            self.sealed_body,
            self.status,
            self.send_at,
            self.not_before,
            self.hold_reason,
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
    failures: int = 0
    """Retryable failures so far (what ``max_attempts`` counts)."""
    held_for: str | None = None
    """The relay that may already hold the message (its ack was lost), while we wait for it."""
    held_until: float = 0.0


RelayCancel = Literal["requested", "not_on_relay", "relay_offline", "relay_cannot_cancel"]
"""What :meth:`Pipeline.request_relay_cancel` did: asked the relay; or could not, because the
message is not on a relay (any more), its relay is offline, or its relay speaks protocol v1."""


@dataclass(slots=True)
class _Feed:
    """A batch whose still queued items are read into the scheduler in id order."""

    account_id: str
    cursor: str = ""
    """The last item id read."""
    not_before: float | None = None
    """A list queued with ``send_at``: its items are ``scheduled`` until then."""
    wake_set: bool = False
    """A wake-up for ``not_before`` is pending."""


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
        sim_policy=device.sim_policy,
        sim_per_day=tuple(sorted(device.sim_limits.items())),
    )


def _timestamp(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _work_from_row(r: Any, *, attempts: int = 0, failures: int = 0) -> Work:
    """The scheduler's record of a stored message row (``messages`` columns)."""
    return Work(
        message_id=r["id"],
        account_id=r["account_id"],
        priority=Priority(r["priority"]),
        expires_at=r["expires_at"].timestamp(),
        pinned_device=r["pinned_device_id"],
        attempts=attempts,
        sim_slot=r["sim_slot"],
        failures=failures,
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
        schedule_horizon: float = DEFAULT_HORIZON,
        list_rate: float = 200.0,
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
            pool, self._write_transitions, name="messages.transitions"
        )
        self._wake = asyncio.Event()
        self._reclaim_grace = reclaim_grace
        self.accepted = 0
        """Messages committed and queued by this process, whatever the send path."""
        self._declared_slots: dict[str, frozenset[int]] = {}
        self._unstored_acks: set[str] = set()
        """Acks of a pull (:meth:`relay_took`) the database did not take: retried on the next pull."""
        self._unstored_expiries: list[Expiry] = []
        """Expiries the database could not take; written again on the next pass."""
        self.held: HeldMessages[_Payload] = HeldMessages(
            pool, clock, from_row=self._held_from_row, release=self._released, horizon=schedule_horizon
        )
        """Scheduled messages due within the horizon; run its task as ``pipeline.holds``."""
        self._cancel_requested: dict[str, tuple[str, str]] = {}
        """Message id → (relay asked to cancel it, reason), until the relay answers."""

        self._feeds: dict[str, _Feed] = {}
        """Batches with items still to read into the scheduler."""
        self._batch_of: dict[str, str] = {}
        """Batch of each list item the scheduler holds."""
        self._list_rate = list_rate
        self._feed_size = max(1, min(FEED_CHUNK, int(list_rate / 4)))
        """Items per read: about four reads a second at the full list rate."""
        self._list_tokens = float(self._feed_size)
        self._list_tokens_at = clock()
        self._feed_pending = False
        """A list-rate wake-up is scheduled."""
        """Loop time of the pending list-rate wake-up (in the past: none)."""
        self._held: Counter[str] = Counter()
        """List items the scheduler holds, per batch: a batch can only be complete when it was
        read to its end and none is left (then the database is asked)."""

    def now(self) -> datetime:
        """The pipeline's clock as an aware UTC datetime (what new messages are stamped with)."""
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- start-up -----------------------------------------------------------------------------

    async def load(self) -> int:
        """Load paired devices and every unfinished message (restart recovery); return the count."""
        for row in await all_paired_devices(self._pool):
            self.device_changed(device_from_row(row))
            self._declared_slots[row.id] = frozenset(s["slot"] for s in telemetry_from_row(row).sims)
        orphans: list[Transition] = []
        reclaimed = 0
        rows = await self._pool.fetch(q.MESSAGE_UNFINISHED)
        for r in rows:
            work = _work_from_row(r, attempts=r["attempts"], failures=r["failures"])
            body = self._text_of(r)
            self._payloads[r["id"]] = _Payload(
                work,
                r["to_number"],
                body,
                r["sim_slot"],
                r["expires_at"],
                attempts=r["attempts"],
                failures=r["failures"],
            )
            if r["batch_id"] is not None:
                self._batch_of[r["id"]] = r["batch_id"]
                self._held[r["batch_id"]] += 1
            device_id = r["device_id"]
            if r["cancel_requested_at"] is not None and device_id is not None:
                self._cancel_requested[r["id"]] = (device_id, r["cancel_reason"] or "api")
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

    def _text_of(self, r: Any) -> str:
        """What the relay sends for a stored message row (an OTP's text is sealed)."""
        return str(r["body"]) if r["sealed_body"] is None else self._secret.unseal(r["sealed_body"], r["id"])

    def _held_from_row(self, r: Any) -> tuple[str, float, _Payload]:
        """A ``MESSAGE_SCHEDULED_DUE`` row as ``(id, release time, payload)``."""
        payload = _Payload(
            _work_from_row(r), r["to_number"], self._text_of(r), r["sim_slot"], r["expires_at"]
        )
        return r["id"], r["not_before"].timestamp(), payload

    def _released(self, payloads: list[_Payload]) -> None:
        """Scheduled messages the database released (``scheduled → queued``): into the queue."""
        for payload in payloads:
            message_id = payload.work.message_id
            if self.scheduler.location(message_id) is not None:
                continue
            self._payloads[message_id] = payload
            self.scheduler.enqueue(payload.work)
        self._wake.set()

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
            dataclasses.replace(
                payload.work, pinned_device=device_id, attempts=payload.attempts, failures=payload.failures
            )
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
            self.scheduler.enqueue(
                dataclasses.replace(payload.work, attempts=payload.attempts, failures=payload.failures)
            )
            self._wake.set()

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
        payload = _Payload(work, message.to, message.text, message.sim_slot, message.expires_at)
        if message.status == "scheduled" and message.not_before is not None:
            self.held.hold(message.id, message.not_before.timestamp(), payload)
            return
        self._payloads[message.id] = payload
        self.scheduler.enqueue(work)
        self._wake.set()

    def batch_queued(self, batch_id: str, account_id: str, not_before: datetime | None = None) -> None:
        """A batch's items are committed (or, at start-up, still open): feed them to the scheduler
        (from ``not_before`` on, when the list was queued with ``send_at``)."""
        self._feeds.setdefault(batch_id, _Feed(account_id, not_before=_timestamp(not_before)))
        self._wake.set()

    def _scheduled_batch_due(self, feed: _Feed) -> None:
        """A scheduled batch's wake-up (the loop's timer may run a little ahead of the clock: the
        next pass sets another if it is still early)."""
        feed.wake_set = False
        self._wake.set()

    async def _release_batch(self, batch_id: str, feed: _Feed, now: float) -> bool:
        """Whether the batch's items may be read now: a scheduled batch whose time came has them
        moved scheduled → queued first (one statement); one still waiting sets its wake-up."""
        if feed.not_before is None:
            return True
        if feed.not_before > now:
            if not feed.wake_set:
                feed.wake_set = True
                asyncio.get_running_loop().call_later(feed.not_before - now, self._scheduled_batch_due, feed)
            return False
        try:
            await self._pool.execute(q.BATCH_RELEASE, batch_id)
        except Exception as exc:
            if _is_unavailable(exc):
                raise _Unavailable from exc
            raise
        feed.not_before = None
        log.info("pipeline.batch_released", batch_id=batch_id)
        return True

    async def _feed_batches(self) -> bool:
        """Read the next items of open batches into the scheduler, batches taking turns, at most
        ``list_rate`` items a second in all (a token bucket of a quarter second), and only for
        accounts with fewer than ``FEED_CHUNK`` messages queued; True if anything was added. A
        batch leaves once read to its end."""
        now = self._clock()
        self._list_tokens = min(
            float(self._feed_size), self._list_tokens + (now - self._list_tokens_at) * self._list_rate
        )
        self._list_tokens_at = now
        added = False
        for batch_id, feed in list(self._feeds.items()):
            if not await self._release_batch(batch_id, feed, now):
                continue
            if self.scheduler.queue_depth(feed.account_id) >= FEED_CHUNK:
                continue
            if self._list_tokens < self._feed_size:
                self._feed_later((self._feed_size - self._list_tokens) / self._list_rate)
                break
            try:
                rows = await self._pool.fetch(q.BATCH_ITEMS_NEXT, batch_id, feed.cursor, self._feed_size)
            except Exception as exc:
                if _is_unavailable(exc):
                    raise _Unavailable from exc
                raise
            self._list_tokens -= len(rows)
            for r in rows:
                if self.scheduler.location(r["id"]) is not None:
                    continue
                work = _work_from_row(r)
                self._payloads[r["id"]] = _Payload(
                    work, r["to_number"], r["body"], r["sim_slot"], r["expires_at"]
                )
                self._batch_of[r["id"]] = batch_id
                self._held[batch_id] += 1
                self.scheduler.enqueue(work)
                added = True
            if rows:
                feed.cursor = rows[-1]["id"]
            del self._feeds[batch_id]
            if len(rows) == self._feed_size:
                self._feeds[batch_id] = feed  # to the back of the turn
            elif self._held[batch_id] <= 0:  # read out, and its last items finished before
                await self._complete_now(batch_id, feed)
        return added

    def _feed_later(self, delay: float) -> None:
        """Run the dispatch loop again when the list-rate bucket holds a read's worth."""
        if not self._feed_pending:
            self._feed_pending = True
            asyncio.get_running_loop().call_later(delay, self._feed_now)

    def _feed_now(self) -> None:
        """The list-rate wake-up. asyncio runs a timer up to its clock resolution early, so the
        bucket may still be a little short: the next pass then asks for another (a pending flag
        rather than a due time, which an early timer left pending for ever: lists stalled)."""
        self._feed_pending = False
        self._wake.set()

    async def _complete_now(self, batch_id: str, feed: _Feed) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await complete_batches(conn, [batch_id])
        except Exception as exc:
            if _is_unavailable(exc):
                self._feeds[batch_id] = feed  # read again (nothing more) and retried
                raise _Unavailable from exc
            raise
        self._held.pop(batch_id, None)

    async def _write_transitions(self, conn: Any, items: Sequence[Transition]) -> list[bool]:
        """``write_transitions``, then, in the same transaction, complete the batches whose
        items it finished (a cancelled list item the scheduler never read in is looked up)."""
        changed = await write_transitions(conn, items)
        final = [
            t
            for t, ok in zip(items, changed, strict=True)
            if ok and t.kind in ("sent", "delivered", "failed", "cancelled")
        ]
        held = [t.message_id for t in final if t.message_id in self._batch_of]
        unread = [t.message_id for t in final if t.kind == "cancelled" and t.message_id not in self._batch_of]
        batches = self._last_items_done(held) if held else []
        if unread:
            batches += [r["batch_id"] for r in await conn.fetch(q.BATCHES_OF_MESSAGES, unread)]
        if batches:
            await complete_batches(conn, batches)
        return changed

    def _last_items_done(self, message_ids: list[str]) -> list[str]:
        """Forget these list items; the batches that may be complete now: read to their end,
        none of their items held any more. (If the transaction fails, the batch is completed
        at the next start.)"""
        batches = set()
        for message_id in message_ids:
            batch_id = self._batch_of.pop(message_id, None)
            if batch_id is not None:
                self._held[batch_id] -= 1
                batches.add(batch_id)
        done = [b for b in batches if self._held[b] <= 0 and b not in self._feeds]
        for batch_id in done:
            del self._held[batch_id]
        return done

    # --- cancelling ---------------------------------------------------------------------------

    async def cancel_queued(self, message_ids: Sequence[str], reason: str) -> list[str]:
        """Cancel those of ``message_ids`` that are still scheduled or waiting in the queue (not
        on a relay); return the ids cancelled, each with its ``message.cancelled`` event.

        Safe against every race with the dispatch loop: the database cancels a message only if
        no dispatch happened since this call looked (the attempt count guards it), so one that
        is on its way to a relay is left alone (and not returned). Raises the database's error
        when it cannot be reached (what was cancelled before that stays cancelled)."""
        now = self.now()
        items: list[Transition] = []
        for message_id in dict.fromkeys(message_ids):
            location = self.scheduler.location(message_id)
            if location is not None and location[0] != "queued":
                continue  # on a relay: request_relay_cancel's business
            payload = self._payloads.get(message_id)
            attempt = payload.attempts if location is not None and payload is not None else 0
            items.append(Transition("cancelled", message_id, None, now, attempt=attempt, reason=reason))
        futures = [self.transitions.submit_nowait(t) for t in items]
        results = await asyncio.gather(*futures, return_exceptions=True)
        cancelled: list[str] = []
        failure: BaseException | None = None
        for item, ok in zip(items, results, strict=True):
            if isinstance(ok, BaseException):
                failure = failure or ok
            elif ok:
                self._forget_cancelled(item.message_id)
                cancelled.append(item.message_id)
        if cancelled:
            log.info("pipeline.cancelled", messages=len(cancelled), reason=reason)
        if failure is not None:
            raise failure
        return cancelled

    def _forget_cancelled(self, message_id: str) -> None:
        """A cancel was committed: the message leaves memory (if the dispatch loop holds a
        decision for it, its ``dispatched`` write fails and the loop forgets it)."""
        self.held.drop(message_id)
        self._cancel_requested.pop(message_id, None)
        location = self.scheduler.location(message_id)
        if location is not None and location[0] == "assigned":
            return  # decided since: its `dispatched` write fails, and the loop forgets it
        if location is not None:
            self.scheduler.finished(message_id)
            self._wake.set()
        self._payloads.pop(message_id, None)

    async def request_relay_cancel(self, message_id: str, reason: str = "api") -> RelayCancel:
        """Ask the relay holding ``message_id`` to cancel it (protocol v1.1 ``cancel``); its
        ``cancel_result`` ends the message ``cancelled`` or leaves it to its reports. A relay
        that speaks only v1 is never sent the frame."""
        location = self.scheduler.location(message_id)
        if location is None or location[0] == "queued" or location[1] is None:
            return "not_on_relay"
        device_id = location[1]
        conn = self.hub.connection(device_id)
        if conn is None or not conn.is_open:
            return "relay_offline"
        if not conn.can_cancel:
            return "relay_cannot_cancel"
        row = await self._pool.fetchval(q.MESSAGE_CANCEL_REQUESTED, message_id, device_id, self.now(), reason)
        if row is None:
            return "not_on_relay"
        self._cancel_requested[message_id] = (device_id, reason)
        outcome: CancelOutcome = "requested"
        try:
            outcome = conn.cancel(message_id)
            await conn.flush()
        except (ConnectionClosed, ProtocolStateError):
            pass  # the session ended meanwhile: relay_offline takes it from here
        log.info("pipeline.cancel_requested", message_id=message_id, device_id=device_id, outcome=outcome)
        if outcome == "dropped":  # it never reached the phone: cancelled now
            await self.relay_cancel_result(
                device_id, CancelResult(id=message_id, result="cancelled", at=None)
            )
        return "requested"

    def cancel_pending(self, message_id: str) -> bool:
        """Whether the gateway asked a relay to cancel ``message_id`` and awaits its answer."""
        return message_id in self._cancel_requested

    async def relay_cancel_result(self, device_id: str, frame: CancelResult) -> None:
        """A relay answered a ``cancel``; returns once a ``cancelled`` is stored (the relay then
        gets its ``report_ack``). ``too_late``: its reports follow as usual."""
        message_id = frame.id
        if frame.result == "too_late":
            self._cancel_requested.pop(message_id, None)
            log.info("pipeline.cancel_too_late", message_id=message_id, device_id=device_id)
            return
        _, reason = self._cancel_requested.get(message_id, (device_id, "api"))
        changed = await self.transitions.submit(
            Transition("cancelled", message_id, device_id, utcnow(), reason=reason)
        )
        location = self.scheduler.location(message_id)
        if changed and location is not None and location[1] == device_id:
            self.scheduler.finished(message_id)
            self._payloads.pop(message_id, None)
            self._wake.set()
        if changed:
            self._cancel_requested.pop(message_id, None)

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
        """A relay said hello. Cancels it was asked for and has not answered are asked again
        (the frame may have been lost with the old connection; the relay answers repeats alike)."""
        self.device_changed(device)
        self.scheduler.set_online(device.id)
        self._wake.set()
        conn = self.hub.connection(device.id)
        if conn is None or not conn.can_cancel or not conn.is_open:
            return
        for message_id, (holder, _) in self._cancel_requested.items():
            if holder == device.id and self.scheduler.location(message_id) == ("acked", device.id):
                conn.cancel(message_id)  # written by the listener after the welcome

    def relay_offline(self, device_id: str) -> None:
        """A relay's session ended: what it never acknowledged goes back to the queue, held for
        that relay during the grace period (its ack may have been lost with the socket)."""
        requeued = self.scheduler.set_offline(device_id)
        now = utcnow()
        for message_id in requeued:
            self.transitions.submit_nowait(
                Transition("requeued", message_id, device_id, now, outcome="relay_offline")
            )
            if message_id in self._cancel_requested:
                self._cancel_after_requeue(message_id, device_id)
                continue
            self._hold_for_relay(message_id, device_id)
        if requeued:
            log.info("pipeline.requeued", device_id=device_id, messages=len(requeued))
        self._wake.set()

    def _cancel_after_requeue(self, message_id: str, device_id: str) -> None:
        """A message whose cancel its relay never answered came back from that relay unacked:
        the gateway cancels it itself; if that cannot be stored it is held for the relay again."""
        _, reason = self._cancel_requested.pop(message_id)
        payload = self._payloads.get(message_id)
        if payload is None:
            return
        self.scheduler.finished(message_id)
        future = self.transitions.submit_nowait(
            Transition("cancelled", message_id, None, utcnow(), attempt=payload.attempts, reason=reason)
        )

        def settled(f: asyncio.Future[bool]) -> None:
            if not f.cancelled() and f.exception() is None and f.result():
                self._payloads.pop(message_id, None)
                return
            if self.scheduler.location(message_id) is None and message_id in self._payloads:
                self.scheduler.enqueue(
                    dataclasses.replace(payload.work, attempts=payload.attempts, failures=payload.failures)
                )
                self._hold_for_relay(message_id, device_id)

        future.add_done_callback(settled)

    def relay_sims(self, device_id: str, declared: frozenset[int], ready: frozenset[int]) -> None:
        """A relay listed its SIM slots: it gets work only on ready ones."""
        self._declared_slots[device_id] = declared
        if self.scheduler.set_sims(device_id, ready):
            self._wake.set()

    def declared_sim_slots(self, device_id: str) -> frozenset[int]:
        """SIM slots the relay listed in its last hello/heartbeat (stored ones after a restart)."""
        return self._declared_slots.get(device_id, frozenset())

    def relay_acked(self, device_id: str, message_id: str) -> None:
        """A relay took a message."""
        if self.scheduler.acked(message_id, device_id):
            self.transitions.submit_nowait(Transition("acked", message_id, device_id, utcnow()))

    def held_by(self, device_id: str) -> list[tuple[str, str, str, int | None, datetime]]:
        """``(id, to, text, sim_slot, expires_at)`` of every message the relay acked and has not
        finished (after a restart: what an SMSGate phone pulled before it)."""
        return [
            (message_id, p.to, p.body, p.sim_slot, p.expires_at)
            for message_id, p in self._payloads.items()
            if self.scheduler.location(message_id) == ("acked", device_id)
        ]

    async def relay_took(self, device_id: str, message_ids: Sequence[str]) -> list[str]:
        """A relay is about to be handed ``message_ids`` (an SMSGate phone's pull): those still
        assigned to it become acked at once — so its going offline no longer re-routes them —
        and the ids returned are those acked now or before, once the acks are stored."""
        taken: list[str] = []
        to_store: list[str] = []
        for message_id in message_ids:
            if self.scheduler.acked(message_id, device_id):
                to_store.append(message_id)
            elif self.scheduler.location(message_id) == ("acked", device_id):
                if message_id in self._unstored_acks:  # an earlier pull's ack did not reach the database
                    to_store.append(message_id)
            else:
                self._unstored_acks.discard(message_id)
                continue
            taken.append(message_id)
        if to_store:
            now = utcnow()
            try:
                await asyncio.gather(
                    *(self.transitions.submit(Transition("acked", m, device_id, now)) for m in to_store)
                )
            except BaseException:
                self._unstored_acks.update(to_store)  # stored by the next pull, before it answers
                raise
            self._unstored_acks.difference_update(to_store)
        return taken

    async def relay_reported(self, device_id: str, report: Report, *, detail: str | None = None) -> None:
        """A relay reported on a message; returns once the report is stored. ``detail`` is a
        failure's human-readable text (an SMSGate phone's error string)."""
        message_id, now = report.id, utcnow()
        location = self.scheduler.location(message_id)
        payload = self._payloads.get(message_id)
        held_here = location is not None and (
            location[1] == device_id or (payload is not None and payload.held_for == device_id)
        )
        if report.status == "failed":
            reason = report.reason or "generic_failure"
            if held_here and is_retryable(reason) and message_id in self._cancel_requested:
                # Not sent, and the customer asked to cancel it: no retry.
                _, why = self._cancel_requested[message_id]
                if await self.transitions.submit(
                    Transition("cancelled", message_id, device_id, now, reason=why)
                ):
                    self._cancel_requested.pop(message_id, None)
                    self.scheduler.finished(message_id)
                    self._payloads.pop(message_id, None)
                    self._wake.set()
                    return
            if held_here and is_retryable(reason):
                if payload is not None:
                    payload.failures += 1
                if self.scheduler.retry(message_id):
                    await self.transitions.submit(
                        Transition("requeued", message_id, device_id, now, outcome="failed", reason=reason)
                    )
                    self._wake.set()
                    return
                self._payloads.pop(message_id, None)
            await self.transitions.submit(
                Transition(
                    "failed", message_id, device_id, now, reason=reason, reported_at=report.at, detail=detail
                )
            )
        else:
            kind: Kind = "sent" if report.status == "sent" else "delivered"
            await self.transitions.submit(Transition(kind, message_id, device_id, now, reported_at=report.at))
            self._cancel_requested.pop(message_id, None)
        if held_here:
            # Only once the report is stored: one the database refused or could not take leaves
            # the message tracked (and its slot taken), so it still ends like an unreported one.
            self.scheduler.finished(message_id)
            self._payloads.pop(message_id, None)
            self._wake.set()

    # --- dispatching --------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (or the clock moved): run the dispatch loop and look at the holds."""
        self._wake.set()
        self.held.wake()

    async def run(self) -> None:
        """Background task ``pipeline.dispatch``: expire, decide, record, send; sleep until the
        next event or the next time-based change the scheduler knows of.

        A change the database refuses (:class:`ItemRejected`) drops that one message from the
        loop; a database that cannot be reached puts the decisions back and retries after
        ``UNAVAILABLE_RETRY`` seconds. Neither ends the task."""
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
                while await self._feed_batches() | await self._dispatch_once():
                    pass
            except _Unavailable as exc:
                log.warning("pipeline.database_unavailable", error=repr(exc.__cause__))
                await asyncio.sleep(UNAVAILABLE_RETRY)
                self._wake.set()

    async def _expire(self) -> None:
        expired, self._unstored_expiries = self._unstored_expiries + self.scheduler.expire_due(), []
        if not expired:
            return
        now = utcnow()
        stored = await asyncio.gather(
            *(
                self.transitions.submit(
                    Transition("failed", e.message_id, None, now, reason=e.reason, detail=e.detail)
                )
                for e in expired
            ),
            return_exceptions=True,
        )
        unavailable: BaseException | None = None
        for e, result in zip(expired, stored, strict=True):
            if isinstance(result, BaseException) and _is_unavailable(result):
                self._unstored_expiries.append(e)  # the scheduler forgot it: retried from here
                unavailable = result
                continue
            self._payloads.pop(e.message_id, None)
            if isinstance(result, ItemRejected):
                log.error("pipeline.expiry_refused", message_id=e.message_id, error=repr(result.__cause__))
            elif isinstance(result, BaseException):
                raise result
        if unavailable is not None:
            raise _Unavailable from unavailable

    async def _dispatch_once(self) -> bool:
        decisions = self.scheduler.next_dispatches(DISPATCH_BATCH)
        if not decisions:
            return False
        # Each decision is for the relay's session of this moment, not for the device: while we
        # commit, that session may end and the phone reconnect at once. The offline handling
        # of the old session then holds the message for the device again, and a `send` written
        # to the new session would reach the phone outside the scheduler's books (or before its
        # hello). So the frame goes out only on the very connection the decision was made for.
        sessions = {d.device_id: self.hub.connection(d.device_id) for d in decisions}
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
        unavailable: BaseException | None = None
        for decision, ok in zip(decisions, stored, strict=True):
            payload = self._payloads.get(decision.message_id)
            if isinstance(ok, BaseException):
                unavailable = self._dispatch_not_stored(decision, ok) or unavailable
                continue
            if not ok or payload is None:
                self.scheduler.finished(decision.message_id)  # finished (or cancelled) meanwhile
                self._payloads.pop(decision.message_id, None)
                continue
            conn = self.hub.connection(decision.device_id)
            if conn is None or conn is not sessions[decision.device_id] or not conn.is_open:
                continue  # that session ended meanwhile: its relay_offline has requeued the message
            conn.send_message(
                id=decision.message_id,
                to=payload.to,
                message=payload.body,
                sim_slot=decision.sim_slot,  # the message's own, or the relay's SIM policy's choice
                expires_at=payload.expires_at,
            )
            touched.add(conn)
        for conn in touched:
            try:
                await conn.flush()
            except ConnectionClosed:
                pass  # the listener notices and reports the relay offline
        if unavailable is not None:
            raise _Unavailable from unavailable
        return len(decisions) == DISPATCH_BATCH

    def _dispatch_not_stored(self, decision: Dispatch, exc: BaseException) -> BaseException | None:
        """A ``dispatched`` transition failed: nothing goes to the relay. Refused data drops the
        message from the loop (it stays queued in the database; a restart loads it again); an
        unreachable database puts it back in the queue. Returns ``exc`` in the latter case.

        If the relay's session ended meanwhile, its offline handling already requeued the
        message: that record is left alone."""
        message_id = decision.message_id
        if isinstance(exc, ItemRejected):
            log.error("pipeline.dispatch_refused", message_id=message_id, error=repr(exc.__cause__))
            self.scheduler.finished(message_id)
            self._payloads.pop(message_id, None)
            return None
        if not _is_unavailable(exc):
            raise exc
        payload = self._payloads.get(message_id)
        if self.scheduler.location(message_id) == ("assigned", decision.device_id) and payload is not None:
            self.scheduler.finished(message_id)
            payload.attempts = decision.attempt - 1
            self.scheduler.enqueue(dataclasses.replace(payload.work, attempts=payload.attempts))
        return exc
