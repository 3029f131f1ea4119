"""The dispatch loop (task ``pipeline.dispatch``): expire, feed list items, decide, record, send.

Each pass fails what expired, reads list items in (:mod:`gateway.sending.feed`), asks the
scheduler for decisions, commits each ``dispatched`` transition and only then writes the
``send`` frame to the relay's link, so a crash never leaves a message on a phone that the
database does not know about. The ``dispatched`` of every message but low-priority work (list
items and ``low`` sends) goes in the transitions writer's urgent lane (its own writer and
transaction), and the pass waits only for those: the frames of the low decisions go out from a
task of their own when their commit is done, so an OTP accepted meanwhile is decided in the next
pass instead of waiting behind a list's commit. In the ordinary lane a ``dispatched`` also
waited for the batch of reports being written (``acked``, ``sent``, ``delivered`` and their
events): at 1,000 sends/s that made the p99 from accept to relay 72 to 237 ms; in the urgent
lane it is 31 to 42 ms (bench/README.md). Then it sleeps until the next event or the next
time-based change the scheduler knows of (an expiry, a rate window, the end of a reclaim grace).
"""

from __future__ import annotations

import asyncio

from websockets.exceptions import ConnectionClosed

from gateway.fleet.hub import RelayHub
from gateway.fleet.link import RelayLink
from gateway.logs import get_logger
from gateway.sending.books import Books, Unavailable, is_unavailable
from gateway.sending.feed import ListFeed
from gateway.sending.transitions import Transition
from scheduler import Dispatch, Expiry, Priority
from store.batcher import ItemRejected

__all__ = ["DISPATCH_BATCH", "MAX_REST", "REST_FACTOR", "UNAVAILABLE_RETRY", "DispatchLoop", "rest_after"]

log = get_logger("gateway.sending.pipeline")

DISPATCH_BATCH = 500
UNAVAILABLE_RETRY = 1.0
"""Seconds the dispatch loop waits before retrying when the database cannot be reached."""
REST_FACTOR = 4.0
"""After the scheduler took ``t`` seconds to decide, the next decision waits ``REST_FACTOR · t``
at least (events meanwhile are taken together by it): deciding costs O(usable relays) per account
with work, and in a reconnect storm every hello woke the loop, so 5,000 phones coming back made
it decide thousands of times over 5,000 relays and left the CPU no time for their handshakes.
A decision over 400 relays takes well under a millisecond, so this adds little there. Measured
in S5: factor 0 (none) 35 s to 99 % back, 2 -> 15.3 s, 4 -> 8.8 to 9.3 s, 8 -> 9.0 s."""
MAX_REST = 0.25
"""Seconds the rest never exceeds: a decision stretched by a pause of the whole process (a
full garbage collection, the machine giving the CPU to another process) must not stop
dispatch for four times that pause."""


def rest_after(decided_in: float) -> float:
    """Seconds the next decision waits after one that took ``decided_in`` seconds."""
    return min(REST_FACTOR * decided_in, MAX_REST)


class DispatchLoop:
    """Moves queued messages to relays; the only task that writes ``send`` frames."""

    def __init__(self, books: Books, hub: RelayHub, feed: ListFeed) -> None:
        self._books = books
        self._hub = hub
        self._feed = feed
        self._unstored_expiries: list[Expiry] = []
        """Expiries the database could not take; written again on the next pass."""
        self._sending: set[asyncio.Task[None]] = set()
        """Tasks sending the frames of ordinary decisions once their commit is done."""
        self._send_failures: list[BaseException] = []
        """What those tasks raised: re-raised by the loop."""
        self._rest_until = 0.0
        """Event-loop time before which the next decision waits (see ``REST_FACTOR`` and ``MAX_REST``)."""

    async def run(self) -> None:
        """Background task ``pipeline.dispatch``: expire, decide, record, send; sleep until the
        next event or the next time-based change the scheduler knows of.

        A change the database refuses (:class:`ItemRejected`) drops that one message from the
        loop; a database that cannot be reached puts the decisions back and retries after
        ``UNAVAILABLE_RETRY`` seconds. Neither ends the task."""
        books = self._books
        try:
            while True:
                wakeup = books.scheduler.next_wakeup()
                timeout = None if wakeup is None else max(0.0, wakeup - books.clock())
                try:
                    async with asyncio.timeout(timeout):
                        await books.wake.wait()
                except TimeoutError:
                    pass
                books.wake.clear()
                try:
                    self._raise_send_failures()
                    await self._expire()
                    while await self._feed.feed() | await self._dispatch_once():
                        pass
                except Unavailable as exc:
                    log.warning("pipeline.database_unavailable", error=repr(exc.__cause__))
                    await asyncio.sleep(UNAVAILABLE_RETRY)
                    books.wake.set()
        finally:
            for task in self._sending:
                task.cancel()

    def _raise_send_failures(self) -> None:
        failures, self._send_failures = self._send_failures, []
        for exc in failures:
            if not isinstance(exc, Unavailable):
                raise exc
        if failures:
            raise failures[0]

    async def _expire(self) -> None:
        books = self._books
        expired, self._unstored_expiries = self._unstored_expiries + books.scheduler.expire_due(), []
        if not expired:
            return
        now = books.now()
        stored = await asyncio.gather(
            *(
                books.transitions.submit(
                    Transition("failed", e.message_id, None, now, reason=e.reason, detail=e.detail)
                )
                for e in expired
            ),
            return_exceptions=True,
        )
        unavailable: BaseException | None = None
        for e, result in zip(expired, stored, strict=True):
            if isinstance(result, BaseException) and is_unavailable(result):
                self._unstored_expiries.append(e)  # the scheduler forgot it: retried from here
                unavailable = result
                continue
            books.texts.pop(e.message_id, None)
            if isinstance(result, ItemRejected):
                log.error("pipeline.expiry_refused", message_id=e.message_id, error=repr(result.__cause__))
            elif isinstance(result, BaseException):
                raise result
        if unavailable is not None:
            raise Unavailable from unavailable

    async def _dispatch_once(self) -> bool:
        books = self._books
        loop = asyncio.get_running_loop()
        if (rest := self._rest_until - loop.time()) > 0:
            await asyncio.sleep(rest)
        started = loop.time()
        decisions = books.scheduler.next_dispatches(DISPATCH_BATCH)
        self._rest_until = (ended := loop.time()) + rest_after(ended - started)
        if not decisions:
            return False
        # Each decision is for the relay's session of this moment, not for the device: while we
        # commit, that session may end and the phone reconnect at once. The offline handling
        # of the old session then holds the message for the device again, and a `send` written
        # to the new session would reach the phone outside the scheduler's books (or before its
        # hello). So the frame goes out only on the very connection the decision was made for.
        sessions = {d.device_id: self._hub.connection(d.device_id) for d in decisions}
        now = books.now()
        texts = books.texts
        urgent = [
            (u := texts.get(d.message_id)) is not None and u.work.priority < Priority.LOW for d in decisions
        ]
        futures = [
            books.transitions.submit_nowait(
                Transition("dispatched", d.message_id, d.device_id, now, attempt=d.attempt), urgent=flag
            )
            for d, flag in zip(decisions, urgent, strict=True)
        ]
        group = [i for i, flag in enumerate(urgent) if flag]
        urgent_sent = asyncio.Event() if group else None
        ordinary = [i for i, flag in enumerate(urgent) if not flag]
        if ordinary:
            task = asyncio.create_task(
                self._send_when_stored(
                    [decisions[i] for i in ordinary],
                    [futures[i] for i in ordinary],
                    sessions,
                    after=urgent_sent,
                )
            )
            self._sending.add(task)
            task.add_done_callback(self._sent)
        if urgent_sent is not None:
            try:
                await self._send_when_stored(
                    [decisions[i] for i in group], [futures[i] for i in group], sessions
                )
            finally:
                urgent_sent.set()
        return len(decisions) == DISPATCH_BATCH

    async def _send_when_stored(
        self,
        decisions: list[Dispatch],
        futures: list[asyncio.Future[bool]],
        sessions: dict[str, RelayLink | None],
        *,
        after: asyncio.Event | None = None,
    ) -> None:
        """Once their commits are done (and, ``after`` given, once the same pass's urgent frames
        went out, so a pass's urgent frames always go first), send the decisions' frames."""
        stored = await asyncio.gather(*futures, return_exceptions=True)
        if after is not None:
            await after.wait()
        unavailable = await self._send_stored(decisions, stored, sessions)
        if unavailable is not None:
            raise Unavailable from unavailable

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A frame-sending task ended: what it raised goes to the loop (woken for it)."""
        self._sending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._send_failures.append(exc)
            self._books.wake.set()

    async def _send_stored(
        self,
        decisions: list[Dispatch],
        stored: list[bool | BaseException],
        sessions: dict[str, RelayLink | None],
    ) -> BaseException | None:
        """Queue the ``send`` frame of each decision whose ``dispatched`` was committed, on the
        session it was made for, and wake those sessions' writers; the database's error if it
        could not be reached."""
        books = self._books
        touched: set[RelayLink] = set()
        unavailable: BaseException | None = None
        finished: list[str] = []
        for decision, ok in zip(decisions, stored, strict=True):
            unfinished = books.texts.get(decision.message_id)
            if isinstance(ok, BaseException):
                unavailable = self._dispatch_not_stored(decision, ok) or unavailable
                continue
            if not ok or unfinished is None:
                books.forget(decision.message_id)  # finished (or cancelled) meanwhile
                finished.append(decision.message_id)
                continue
            conn = self._hub.connection(decision.device_id)
            if conn is None or conn is not sessions[decision.device_id] or not conn.is_open:
                continue  # that session ended meanwhile: its relay_offline has requeued the message
            conn.send_message(
                id=decision.message_id,
                to=unfinished.to,
                message=unfinished.body,
                sim_slot=decision.sim_slot,  # the message's own, or the relay's SIM policy's choice
                expires_at=unfinished.expires_at,
            )
            touched.add(conn)
        for conn in touched:
            try:
                await conn.flush()
            except ConnectionClosed:
                pass  # the listener notices and reports the relay offline
        if finished:
            await self._feed.let_go(finished)
        return unavailable

    def _dispatch_not_stored(self, decision: Dispatch, exc: BaseException) -> BaseException | None:
        """A ``dispatched`` transition failed: nothing goes to the relay. Refused data drops the
        message from the loop (it stays queued in the database; a restart loads it again); an
        unreachable database puts it back in the queue. Returns ``exc`` in the latter case.

        If the relay's session ended meanwhile, its offline handling already requeued the
        message: that record is left alone."""
        books = self._books
        message_id = decision.message_id
        if isinstance(exc, ItemRejected):
            log.error("pipeline.dispatch_refused", message_id=message_id, error=repr(exc.__cause__))
            books.forget(message_id)
            return None
        if not is_unavailable(exc):
            raise exc
        if message_id in books.texts:
            books.scheduler.undo_dispatch(message_id, decision.device_id)
        return exc
