"""A pooled connection kept between statements by one sequential user.

A group-commit lane (:class:`store.batcher.Batcher`) or a batched reader
(:class:`store.batched_read.BatchedRead`) runs one batch after another, each as soon as the
previous one is done. At moderate rates a batch holds one or two items, and taking a connection
from asyncpg's pool and giving it back (a task for the release's shield, one for the acquire's
timeout, their timers) costs more CPU than the statement itself. :meth:`HeldConnection.use`
keeps the connection from one use to the next and gives it back to the pool:

* after :data:`MAX_USES` uses;
* after ``idle`` seconds without a use (so an idle lane holds nothing, and ``Pool.close()``
  waits at most that long);
* after any error inside a use (the connection may be broken, or a transaction left open: the
  pool's release rolls it back or terminates the connection);
* when the server closed it (a restart): the next use takes a fresh one;
* at :meth:`release`.

One use at a time: the caller's own sequencing guarantees it (one lane task, one reader task).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog

__all__ = ["IDLE_RELEASE", "HeldConnection"]

log = structlog.get_logger("store.held")

IDLE_RELEASE = 0.25
"""Seconds an unused held connection stays out of the pool."""
MAX_USES = 10_000
"""Uses after which the connection goes back to the pool anyway (so the pool's own checks on
release, such as its ``max_queries``, still see it now and then)."""


class HeldConnection:
    """One connection of ``pool``, held across uses by a single sequential user."""

    def __init__(self, pool: asyncpg.Pool[Any], *, idle: float = IDLE_RELEASE) -> None:
        self._pool = pool
        self._idle = idle
        self._conn: Any = None
        self._busy = False
        self._uses = 0
        self._last_use = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._giving_back: set[asyncio.Task[None]] = set()

    def holding(self) -> bool:
        """Whether a connection is out of the pool now."""
        return self._conn is not None

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """The held connection (taken from the pool first if none is held or it was closed)."""
        assert not self._busy, "HeldConnection.use() is for one user at a time"
        conn = self._conn
        if conn is not None and not _open(conn):
            self._give_back_soon(self._take())  # the pool replaces it with a fresh one
            conn = None
        if conn is None:
            conn = await self._pool.acquire()
            self._conn = conn
            self._uses = 0
        self._busy = True
        self._uses += 1
        try:
            yield conn
        except BaseException:
            self._conn = None
            try:
                await self._pool.release(conn)
            except Exception as exc:  # the use's own error is the one to raise
                log.warning("held_connection.release_failed", error=repr(exc))
            raise
        finally:
            self._busy = False
            loop = asyncio.get_running_loop()
            self._last_use = loop.time()
            if self._conn is not None and self._uses >= MAX_USES:
                self._give_back_soon(self._take())
            elif self._conn is not None and self._timer is None:
                self._timer = loop.call_later(self._idle, self._release_if_idle)

    async def release(self) -> None:
        """Give the connection back now (at shutdown, before the pool closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)
        if self._giving_back:
            await asyncio.gather(*self._giving_back, return_exceptions=True)

    def _take(self) -> Any:
        conn, self._conn = self._conn, None
        return conn

    def _release_if_idle(self) -> None:
        self._timer = None
        if self._conn is None or self._busy:
            return  # the running use arms the next check when it ends
        loop = asyncio.get_running_loop()
        wait = self._last_use + self._idle - loop.time()
        if wait > 0:
            self._timer = loop.call_later(wait, self._release_if_idle)
            return
        self._give_back_soon(self._take())

    def _give_back_soon(self, conn: Any) -> None:
        task = asyncio.ensure_future(self._pool.release(conn))
        self._giving_back.add(task)
        task.add_done_callback(self._given_back)

    def _given_back(self, task: asyncio.Task[None]) -> None:
        self._giving_back.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("held_connection.release_failed", error=repr(task.exception()))


def _open(conn: Any) -> bool:
    """Whether the held connection is still usable: not closed by the server, and not taken back
    by the pool already (asyncpg does that to a connection whose socket was lost)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False
