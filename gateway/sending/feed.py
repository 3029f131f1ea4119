"""List items on their way from PostgreSQL into the scheduler, and batch completion.

A list send (:mod:`gateway.recipients.batches`) commits every item as a ``messages`` row; the
pipeline is only told the batch exists (:meth:`ListFeed.batch_queued`). The dispatch loop then
calls :meth:`ListFeed.feed`, which reads the next queued items of open batches a chunk at a time
while their account has little queued, at most ``list_rate`` items a second in all, so a backlog
of a million items holds about ``FEED_CHUNK`` of them in memory per batch. A list queued with
``send_at`` has its items released (scheduled → queued, one statement) when its time comes. The
``messages.transitions`` writer (:meth:`ListFeed.write_transitions`) completes a batch in the
transaction that finishes its last item (``batch.completed``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.logs import get_logger
from gateway.recipients.completion import complete_batches
from gateway.sending.books import Books, Unavailable, Unfinished, is_unavailable, work_from_row
from gateway.sending.transitions import Transition, write_transitions
from store import messages as store

__all__ = ["FEED_CHUNK", "ListFeed"]

log = get_logger("gateway.sending.pipeline")

FEED_CHUNK = 1000
"""List items read into the scheduler at a time at most, when their account has fewer queued."""


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


class ListFeed:
    """Open batches, their read cursors, and which list items the scheduler holds."""

    def __init__(self, pool: asyncpg.Pool[Any], books: Books, *, list_rate: float) -> None:
        self._pool = pool
        self._books = books
        self._feeds: dict[str, _Feed] = {}
        """Batches with items still to read into the scheduler."""
        self._batch_of: dict[str, str] = {}
        """Batch of each list item the scheduler holds."""
        self._held: Counter[str] = Counter()
        """List items the scheduler holds, per batch: a batch can only be complete when it was
        read to its end and none is left (then the database is asked)."""
        self._list_rate = list_rate
        self._feed_size = max(1, min(FEED_CHUNK, int(list_rate / 4)))
        """Items per read: about four reads a second at the full list rate."""
        self._list_tokens = float(self._feed_size)
        self._list_tokens_at = books.clock()
        self._feed_pending = False
        """A list-rate wake-up is scheduled."""

    def loaded(self, message_id: str, batch_id: str) -> None:
        """At start-up: an unfinished list item read back with the other messages."""
        self._batch_of[message_id] = batch_id
        self._held[batch_id] += 1

    def batch_queued(self, batch_id: str, account_id: str, not_before: datetime | None = None) -> None:
        """A batch's items are committed (or, at start-up, still open): feed them to the scheduler
        (from ``not_before`` on, when the list was queued with ``send_at``)."""
        at = None if not_before is None else not_before.timestamp()
        self._feeds.setdefault(batch_id, _Feed(account_id, not_before=at))
        self._books.wake.set()

    def _scheduled_batch_due(self, feed: _Feed) -> None:
        """A scheduled batch's wake-up (the loop's timer may run a little ahead of the clock: the
        next pass sets another if it is still early)."""
        feed.wake_set = False
        self._books.wake.set()

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
            await store.release_batch(self._pool, batch_id=batch_id)
        except Exception as exc:
            if is_unavailable(exc):
                raise Unavailable from exc
            raise
        feed.not_before = None
        log.info("pipeline.batch_released", batch_id=batch_id)
        return True

    async def feed(self) -> bool:
        """Read the next items of open batches into the scheduler, batches taking turns, at most
        ``list_rate`` items a second in all (a token bucket of a quarter second), and only for
        accounts with fewer than ``FEED_CHUNK`` messages queued; True if anything was added. A
        batch leaves once read to its end."""
        books = self._books
        now = books.clock()
        self._list_tokens = min(
            float(self._feed_size), self._list_tokens + (now - self._list_tokens_at) * self._list_rate
        )
        self._list_tokens_at = now
        added = False
        for batch_id, feed in list(self._feeds.items()):
            if not await self._release_batch(batch_id, feed, now):
                continue
            if books.scheduler.queue_depth(feed.account_id) >= FEED_CHUNK:
                continue
            if self._list_tokens < self._feed_size:
                self._feed_later((self._feed_size - self._list_tokens) / self._list_rate)
                break
            try:
                rows = await store.batch_items(
                    self._pool, batch_id=batch_id, after=feed.cursor, limit=self._feed_size
                )
            except Exception as exc:
                if is_unavailable(exc):
                    raise Unavailable from exc
                raise
            self._list_tokens -= len(rows)
            for r in rows:
                if books.scheduler.location(r.id) is not None:
                    continue
                books.queue(Unfinished(work_from_row(r), r.to_number, r.body, r.sim_slot, r.expires_at))
                self.loaded(r.id, batch_id)
                added = True
            if rows:
                feed.cursor = rows[-1].id
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
        self._books.wake.set()

    async def _complete_now(self, batch_id: str, feed: _Feed) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await complete_batches(conn, [batch_id])
        except Exception as exc:
            if is_unavailable(exc):
                self._feeds[batch_id] = feed  # read again (nothing more) and retried
                raise Unavailable from exc
            raise
        self._held.pop(batch_id, None)

    async def write_transitions(self, conn: Any, items: Sequence[Transition]) -> list[bool]:
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
            batches += await store.batches_of(conn, unread)
        if batches:
            await complete_batches(conn, batches)
        return changed

    async def let_go(self, message_ids: Sequence[str]) -> None:
        """List items the scheduler let go of because they had finished without a change of
        theirs written here: cancelled while the feed was reading them in (the read saw them
        queued, the cancel saw them not yet held), so the cancel's transaction could not count
        them. Completes their batch if they were its last items; if the database cannot be
        reached for that, the batch is completed at the next start."""
        done = self._last_items_done([m for m in message_ids if m in self._batch_of])
        if not done:
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await complete_batches(conn, done)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("pipeline.batch_completion_deferred", batches=done, error=repr(exc))

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
