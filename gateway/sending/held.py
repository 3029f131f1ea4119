"""Scheduled messages (``send_at``, quiet hours) on their way to the queue.

A scheduled message is committed with ``status = 'scheduled'`` and its release time
``not_before``. Memory holds only those due within ``horizon`` seconds (the *frontier*): their
text and routing facts, keyed in a :class:`scheduler.HoldQueue`. Messages due later stay in
PostgreSQL alone and are read when the frontier reaches them (the ``pipeline.holds`` task looks
ahead every ``horizon / 2`` seconds), so a million messages scheduled for next month cost no
memory today. At its time a message is released in the database (``scheduled → queued``, which
only succeeds if nothing cancelled it meanwhile) and only then handed to the scheduler.

Races are settled by the database: the frontier moves before the look-ahead query runs, so a
message accepted meanwhile is either kept in memory by its accept or seen by the query (both is
harmless: ids are de-duplicated, and the release ``UPDATE`` hands each message over once).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg

from gateway.logs import get_logger
from scheduler import HoldQueue
from store import transitions as store
from store.database import DATABASE_DOWN

__all__ = ["DEFAULT_HORIZON", "HeldMessages"]

log = get_logger("gateway.sending.held")

T = TypeVar("T")

DEFAULT_HORIZON = 3600.0
"""Seconds ahead whose scheduled messages are kept in memory."""
RELEASE_BATCH = 1000
RETRY_AFTER = 1.0
"""Seconds before retrying when the database cannot be reached."""
_DATABASE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.PostgresError)
"""Retried, never fatal: the database is down (or refused one statement; the rows stay
``scheduled`` and are read again)."""


class HeldMessages(Generic[T]):
    """The scheduled messages due within the horizon, and the task that releases them.

    ``from_row`` turns a :class:`store.transitions.ScheduledRow` into ``(id, release time, payload)``;
    ``release`` receives the payloads the database released, in release order."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        clock: Callable[[], float],
        *,
        from_row: Callable[[Any], tuple[str, float, T]],
        release: Callable[[list[T]], None],
        horizon: float = DEFAULT_HORIZON,
    ) -> None:
        if horizon <= 0:
            raise ValueError("horizon must be positive")
        self._pool = pool
        self._clock = clock
        self._from_row = from_row
        self._release = release
        self._horizon = horizon
        self._queue = HoldQueue(clock)
        self._payloads: dict[str, T] = {}
        self._frontier = -math.inf
        """Every scheduled message due by this time is in memory."""
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._payloads)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._payloads

    @property
    def frontier(self) -> float:
        """Scheduled messages due by this clock time are held in memory; later ones only in
        the database."""
        return self._frontier

    def hold(self, message_id: str, release_at: float, payload: T) -> bool:
        """A scheduled message was committed: keep it if it is due within the horizon (True),
        else leave it to the database until the frontier reaches it (False)."""
        if release_at > self._frontier:
            return False
        self._payloads[message_id] = payload
        self._queue.hold(message_id, release_at)
        self._wake.set()
        return True

    def drop(self, message_id: str) -> bool:
        """Forget a held message (it was cancelled); False if it was not in memory."""
        self._queue.drop(message_id)
        return self._payloads.pop(message_id, None) is not None

    def wake(self) -> None:
        """The clock may have moved (tests with a shifted clock): look again now."""
        self._wake.set()

    async def load(self) -> int:
        """Read the scheduled messages due within the horizon (start-up, then each look-ahead);
        return how many were new to memory."""
        previous, self._frontier = self._frontier, self._clock() + self._horizon
        try:
            rows = await store.scheduled_due(self._pool, by=datetime.fromtimestamp(self._frontier, UTC))
        except BaseException:
            self._frontier = previous
            raise
        added = 0
        for row in rows:
            message_id, release_at, payload = self._from_row(row)
            if message_id not in self._payloads:
                self._payloads[message_id] = payload
                self._queue.hold(message_id, release_at)
                added += 1
        return added

    async def run(self) -> None:
        """Background task ``pipeline.holds``: look ahead, release what is due, sleep until the
        next release or look-ahead. A database that cannot be reached is retried; nothing held
        is lost (it stays ``scheduled`` in PostgreSQL)."""
        while True:
            self._wake.clear()
            try:
                if self._clock() + self._horizon / 2 >= self._frontier:
                    await self.load()
                while due := self._queue.due(RELEASE_BATCH):
                    await self._release_ids(due)
            except _DATABASE_ERRORS as exc:
                log.warning("pipeline.holds_unavailable", error=repr(exc))
                await asyncio.sleep(RETRY_AFTER)
                continue
            next_release = self._queue.next_release()
            deadline = min(
                next_release if next_release is not None else math.inf, self._frontier - self._horizon / 2
            )
            timeout = max(0.0, deadline - self._clock())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _release_ids(self, due: list[str]) -> None:
        payloads = {m: self._payloads[m] for m in due if m in self._payloads}
        try:
            released = await store.release_scheduled(self._pool, list(payloads))
        except BaseException:
            now = self._clock()
            for message_id in payloads:
                self._queue.hold(message_id, now)  # still scheduled in the database: retried
            raise
        for message_id in payloads:
            self._payloads.pop(message_id, None)
        ids = set(released)
        if ids:
            self._release([payload for message_id, payload in payloads.items() if message_id in ids])
            log.info("pipeline.released", messages=len(ids))
