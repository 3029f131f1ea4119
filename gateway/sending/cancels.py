"""Cancelling messages: in the database while they wait, through their relay once they are on one.

* A message still scheduled or queued is cancelled in the database and forgotten
  (:meth:`Cancels.cancel_queued`); the attempt count the gateway saw guards the statement, so a
  dispatch that happened since wins.
* One on a relay that speaks protocol v1.1 gets a ``cancel`` frame
  (:meth:`Cancels.request_relay_cancel`) and ends ``cancelled`` when the relay confirms
  (:meth:`Cancels.relay_cancel_result`); a relay that speaks only v1 is never sent the frame.
* A message whose cancel its relay never answered and that came back from it unacked is
  cancelled by the gateway itself (:meth:`Cancels.after_requeue`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

import asyncpg
import msgspec
from websockets.exceptions import ConnectionClosed

from gateway.fleet.hub import RelayHub
from gateway.fleet.link import CancelOutcome
from gateway.logs import get_logger
from gateway.sending.books import Books
from gateway.sending.feed import ListFeed
from gateway.sending.held import HeldMessages
from gateway.sending.transitions import Transition
from protocol import CancelResult, ProtocolStateError
from store import transitions as store

__all__ = ["Cancels", "RelayCancel"]

log = get_logger("gateway.sending.pipeline")

RelayCancel = Literal["requested", "not_on_relay", "relay_offline", "relay_cannot_cancel"]
"""What :meth:`Cancels.request_relay_cancel` did: asked the relay; or could not, because the
message is not on a relay (any more), its relay is offline, or its relay speaks protocol v1."""


class Cancels:
    """Every way a message ends ``cancelled``."""

    def __init__(
        self, pool: asyncpg.Pool[Any], books: Books, hub: RelayHub, held: HeldMessages[Any], feed: ListFeed
    ) -> None:
        self._pool = pool
        self._books = books
        self._hub = hub
        self._held = held
        self._feed = feed

    async def cancel_queued(self, message_ids: Sequence[str], reason: str) -> list[str]:
        """Cancel those of ``message_ids`` that are still scheduled or waiting in the queue (not
        on a relay); return the ids cancelled, each with its ``message.cancelled`` event.

        Safe against every race with the dispatch loop: the database cancels a message only if
        no dispatch happened since this call looked (the attempt count guards it), so one that
        is on its way to a relay is left alone (and not returned). Raises the database's error
        when it cannot be reached (what was cancelled before that stays cancelled)."""
        books = self._books
        now = books.now()
        items: list[Transition] = []
        for message_id in dict.fromkeys(message_ids):
            location = books.scheduler.location(message_id)
            if location is not None and location[0] != "queued":
                continue  # on a relay: request_relay_cancel's business
            attempt = books.scheduler.attempts(message_id)
            items.append(Transition("cancelled", message_id, None, now, attempt=attempt, reason=reason))
        futures = [books.transitions.submit_nowait(t) for t in items]
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
            await self._feed.let_go(cancelled)
        if failure is not None:
            raise failure
        return cancelled

    def _forget_cancelled(self, message_id: str) -> None:
        """A cancel was committed: the message leaves memory (if the dispatch loop holds a
        decision for it, its ``dispatched`` write fails and the loop forgets it)."""
        books = self._books
        self._held.drop(message_id)
        books.cancel_requested.pop(message_id, None)
        location = books.scheduler.location(message_id)
        if location is not None and location[0] == "assigned":
            return  # decided since: its `dispatched` write fails, and the loop forgets it
        if location is not None:
            books.scheduler.finished(message_id)
            books.wake.set()
        books.texts.pop(message_id, None)

    async def request_relay_cancel(self, message_id: str, reason: str = "api") -> RelayCancel:
        """Ask the relay holding ``message_id`` to cancel it (protocol v1.1 ``cancel``); its
        ``cancel_result`` ends the message ``cancelled`` or leaves it to its reports. A relay
        that speaks only v1 is never sent the frame."""
        books = self._books
        location = books.scheduler.location(message_id)
        if location is None or location[0] == "queued" or location[1] is None:
            return "not_on_relay"
        device_id = location[1]
        conn = self._hub.connection(device_id)
        if conn is None or not conn.is_open:
            return "relay_offline"
        if not conn.can_cancel:
            return "relay_cannot_cancel"
        if not await store.request_cancel(
            self._pool, message_id=message_id, device_id=device_id, at=books.now(), reason=reason
        ):
            return "not_on_relay"
        books.cancel_requested[message_id] = (device_id, reason)
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

    def pending(self, message_id: str) -> bool:
        """Whether the gateway asked a relay to cancel ``message_id`` and awaits its answer."""
        return message_id in self._books.cancel_requested

    async def relay_cancel_result(self, device_id: str, frame: CancelResult) -> None:
        """A relay answered a ``cancel``; returns once a ``cancelled`` is stored (the relay then
        gets its ``report_ack``). ``too_late``: its reports follow as usual."""
        books = self._books
        message_id = frame.id
        if frame.result == "too_late":
            books.cancel_requested.pop(message_id, None)
            log.info("pipeline.cancel_too_late", message_id=message_id, device_id=device_id)
            return
        _, reason = books.cancel_requested.get(message_id, (device_id, "api"))
        changed = await books.transitions.submit(
            Transition("cancelled", message_id, device_id, books.now(), reason=reason)
        )
        location = books.scheduler.location(message_id)
        if changed and location is not None and location[1] == device_id:
            books.forget(message_id)
            books.wake.set()
        if changed:
            books.cancel_requested.pop(message_id, None)

    def after_requeue(self, message_id: str, device_id: str) -> None:
        """A message whose cancel its relay never answered came back from that relay unacked:
        the gateway cancels it itself; if that cannot be stored it is held for the relay again."""
        books = self._books
        _, reason = books.cancel_requested.pop(message_id)
        unfinished = books.texts.get(message_id)
        if unfinished is None:
            return
        attempts = books.scheduler.attempts(message_id)
        failures = books.scheduler.failures(message_id)
        books.scheduler.finished(message_id)
        future = books.transitions.submit_nowait(
            Transition("cancelled", message_id, None, books.now(), attempt=attempts, reason=reason)
        )

        def settled(f: asyncio.Future[bool]) -> None:
            if not f.cancelled() and f.exception() is None and f.result():
                books.texts.pop(message_id, None)
                return
            if books.scheduler.location(message_id) is None and message_id in books.texts:
                books.scheduler.enqueue(
                    msgspec.structs.replace(unfinished.work, attempts=attempts, failures=failures)
                )
                books.hold_for_relay(message_id, device_id)

        future.add_done_callback(settled)
