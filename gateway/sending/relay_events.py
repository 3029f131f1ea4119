"""What relays tell the send pipeline: online, offline, SIM slots, acks, pulls and reports.

The hub (:mod:`gateway.fleet.hub`) forwards these happenings; :class:`RelayHappenings` turns
each into scheduler changes and durable transitions. A report is stored before the relay gets
its ``report_ack`` (the awaitable methods return only then); a relay that leaves with messages
it never acknowledged has them held for it during the reclaim grace
(:meth:`~gateway.sending.books.Books.hold_for_relay`), since its ack may have been lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from gateway.fleet.devices import DeviceRecord
from gateway.fleet.hub import RelayHub
from gateway.logs import get_logger
from gateway.sending.books import Books
from gateway.sending.cancels import Cancels
from gateway.sending.transitions import Kind, Transition
from protocol import Report
from scheduler import is_retryable

__all__ = ["RelayHappenings"]

log = get_logger("gateway.sending.pipeline")


class RelayHappenings:
    """The pipeline's side of :class:`gateway.fleet.hub.RelayEvents` (but cancel results)."""

    def __init__(self, books: Books, hub: RelayHub, cancels: Cancels) -> None:
        self._books = books
        self._hub = hub
        self._cancels = cancels
        self.declared_slots: dict[str, frozenset[int]] = {}
        """SIM slots each relay listed in its last hello/heartbeat (stored ones after a restart)."""
        self._unstored_acks: set[str] = set()
        """Acks of a pull (:meth:`relay_took`) the database did not take: retried on the next pull."""

    def relay_online(self, device: DeviceRecord) -> None:
        """A relay said hello. Cancels it was asked for and has not answered are asked again
        (the frame may have been lost with the old connection; the relay answers repeats alike)."""
        books = self._books
        books.device_changed(device)
        books.scheduler.set_online(device.id)
        conn = self._hub.connection(device.id)
        if conn is None or not conn.can_cancel or not conn.is_open:
            return
        for message_id, (holder, _) in books.cancel_requested.items():
            if holder == device.id and books.scheduler.location(message_id) == ("acked", device.id):
                conn.cancel(message_id)  # written by the listener after the welcome

    def relay_offline(self, device_id: str) -> None:
        """A relay's session ended: what it never acknowledged goes back to the queue, held for
        that relay during the grace period (its ack may have been lost with the socket)."""
        books = self._books
        requeued = books.scheduler.set_offline(device_id)
        now = books.now()
        for message_id in requeued:
            books.transitions.submit_nowait(
                Transition("requeued", message_id, device_id, now, outcome="relay_offline")
            )
            if message_id in books.cancel_requested:
                self._cancels.after_requeue(message_id, device_id)
                continue
            books.hold_for_relay(message_id, device_id)
        if requeued:
            log.info("pipeline.requeued", device_id=device_id, messages=len(requeued))
        books.wake.set()

    def relay_sims(self, device_id: str, declared: frozenset[int], ready: frozenset[int]) -> None:
        """A relay listed its SIM slots: it gets work only on ready ones."""
        self.declared_slots[device_id] = declared
        if self._books.scheduler.set_sims(device_id, ready):
            self._books.wake.set()

    def relay_acked(self, device_id: str, message_id: str) -> None:
        """A relay took a message."""
        books = self._books
        if books.scheduler.acked(message_id, device_id):
            books.transitions.submit_nowait(Transition("acked", message_id, device_id, books.now()))

    def held_by(self, device_id: str) -> list[tuple[str, str, str, int | None, datetime]]:
        """``(id, to, text, sim_slot, expires_at)`` of every message the relay acked and has not
        finished (after a restart: what an SMSGate phone pulled before it)."""
        scheduler = self._books.scheduler
        return [
            (message_id, u.to, u.body, u.sim_slot, u.expires_at)
            for message_id, u in self._books.texts.items()
            if scheduler.location(message_id) == ("acked", device_id)
        ]

    async def relay_took(self, device_id: str, message_ids: Sequence[str]) -> list[str]:
        """A relay is about to be handed ``message_ids`` (an SMSGate phone's pull): those still
        assigned to it become acked at once — so its going offline no longer re-routes them —
        and the ids returned are those acked now or before, once the acks are stored."""
        books = self._books
        taken: list[str] = []
        to_store: list[str] = []
        for message_id in message_ids:
            if books.scheduler.acked(message_id, device_id):
                to_store.append(message_id)
            elif books.scheduler.location(message_id) == ("acked", device_id):
                if message_id in self._unstored_acks:  # an earlier pull's ack did not reach the database
                    to_store.append(message_id)
            else:
                self._unstored_acks.discard(message_id)
                continue
            taken.append(message_id)
        if to_store:
            now = books.now()
            try:
                await asyncio.gather(
                    *(books.transitions.submit(Transition("acked", m, device_id, now)) for m in to_store)
                )
            except BaseException:
                self._unstored_acks.update(to_store)  # stored by the next pull, before it answers
                raise
            self._unstored_acks.difference_update(to_store)
        return taken

    async def relay_reported(self, device_id: str, report: Report, *, detail: str | None = None) -> None:
        """A relay reported on a message; returns once the report is stored. ``detail`` is a
        failure's human-readable text (an SMSGate phone's error string)."""
        books = self._books
        message_id, now = report.id, books.now()
        location = books.scheduler.location(message_id)
        held_here = location is not None and (
            location[1] == device_id or books.scheduler.held_for(message_id) == device_id
        )
        if report.status == "failed":
            reason = report.reason or "generic_failure"
            if held_here and is_retryable(reason) and message_id in books.cancel_requested:
                # Not sent, and the customer asked to cancel it: no retry.
                _, why = books.cancel_requested[message_id]
                if await books.transitions.submit(
                    Transition("cancelled", message_id, device_id, now, reason=why)
                ):
                    books.cancel_requested.pop(message_id, None)
                    books.forget(message_id)
                    books.wake.set()
                    return
            if held_here and is_retryable(reason):
                if books.scheduler.retry(message_id):
                    await books.transitions.submit(
                        Transition("requeued", message_id, device_id, now, outcome="failed", reason=reason)
                    )
                    books.wake.set()
                    return
                books.texts.pop(message_id, None)
            await books.transitions.submit(
                Transition(
                    "failed", message_id, device_id, now, reason=reason, reported_at=report.at, detail=detail
                )
            )
        else:
            kind: Kind = "sent" if report.status == "sent" else "delivered"
            await books.transitions.submit(
                Transition(kind, message_id, device_id, now, reported_at=report.at)
            )
            books.cancel_requested.pop(message_id, None)
        if held_here:
            # Only once the report is stored: one the database refused or could not take leaves
            # the message tracked (and its slot taken), so it still ends like an unreported one.
            books.forget(message_id)
            books.wake.set()
