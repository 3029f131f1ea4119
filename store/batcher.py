"""Group commit: many concurrent callers, one transaction.

Callers ``await batcher.submit(item)``. A single writer task takes everything that arrived
while the previous batch was being written (up to ``max_batch``), writes it with one call of
``write(conn, items)`` inside one transaction, and resolves each caller with its result. Under
load batches grow by themselves, so durability costs one commit (one fsync) per batch, not per
item; when idle a lone item is written at once, with no added delay.

If the write fails every caller of that batch gets the exception: nothing is reported as
stored unless its transaction committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import asyncpg

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")

WriteFn = Callable[[Any, Sequence[T]], Awaitable[Sequence[R]]]


class Batcher(Generic[T, R]):
    """Collects items and writes them in batches through ``write``."""

    def __init__(
        self, pool: asyncpg.Pool[Any], write: WriteFn[T, R], *, name: str, max_batch: int = 1000
    ) -> None:
        self.name = name
        self._pool = pool
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait until its batch is committed; return its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    def submit_nowait(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the returned future resolves at commit (callers may ignore it)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume_exception)
        self._pending.append((item, future))
        self._wake.set()
        return future

    @property
    def backlog(self) -> int:
        """Items waiting for the next batch."""
        return len(self._pending)

    async def run(self) -> None:
        """The writer task: write batches until cancelled (what is pending stays for ``close``)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._write_one_batch()

    async def close(self) -> None:
        """At shutdown, after the writer task stopped: write what is pending, fail the rest."""
        try:
            while self._pending:
                await self._write_one_batch()
        finally:
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.name}: writer stopped"))
            self._pending.clear()

    async def _write_one_batch(self) -> None:
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        items = [item for item, _ in batch]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                results = await self._write(conn, items)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(items)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
