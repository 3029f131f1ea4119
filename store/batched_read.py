"""Batched point reads: many concurrent callers, one query.

A send checks facts about its number (is it opted out, what did the account send it this hour)
before its commit. One query per send costs a pool checkout and a round trip each; under load
the checks of concurrent sends are read together instead: ``await reads.get(key)`` queues the
key, and while no read is running one starts and takes every key asked so far (up to
``max_batch``), then the keys asked meanwhile, until none is left. When idle a lone key is read
at once, with no added delay. A failed query fails the callers of its batch with the error; the
next batch tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import asyncpg

from store.held import HeldConnection

__all__ = ["BatchedRead"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

ReadFn = Callable[[Any, Sequence[K]], Awaitable[dict[K, V]]]


class BatchedRead(Generic[K, V]):
    """Reads keys with ``read(pool, keys) -> {key: value}`` in batches; a key the read does not
    return gets ``missing``."""

    def __init__(
        self, pool: asyncpg.Pool[Any], read: ReadFn[K, V], *, missing: V, max_batch: int = 500
    ) -> None:
        self._held = HeldConnection(pool)
        """The reader's connection, kept between its queries (:mod:`store.held`)."""
        self._read = read
        self._missing = missing
        self._max_batch = max_batch
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.queries = 0
        """Queries run (for tests and metrics)."""

    async def get(self, key: K) -> V:
        """The value of ``key``, read with the keys other callers ask meanwhile."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_waiting())
        return await future

    async def _read_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                keys = list(dict.fromkeys(key for key, _ in batch))
                try:
                    async with self._held.use() as conn:
                        values = await self._read(conn, keys)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:
                    self.queries += 1
                for key, future in batch:
                    if not future.done():
                        future.set_result(values.get(key, self._missing))
        finally:
            self._reader = None
