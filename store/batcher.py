"""Group commit: many concurrent callers, one transaction.

Callers ``await batcher.submit(item)``. A single writer task takes everything that arrived
while the previous batch was being written (up to ``max_batch``), writes it with one call of
``write(conn, items)`` inside one transaction, and resolves each caller with its result. Under
load batches grow by themselves, so durability costs one commit (one fsync) per batch, not per
item; when idle a lone item is written at once, with no added delay.

If the write fails with a *data error* (PostgreSQL refused something in the items, not the
connection: see :func:`is_data_error`), the batch is written again in halves, each in its own
savepoint of one transaction, down to single items: only the offending item's caller gets
:class:`ItemRejected`, the others commit (one bad item among ``n`` costs about ``2·log2(n)``
extra statements, not ``n``). Any other failure (connection lost, server shutting down) fails every caller of
the batch with that exception: nothing is reported as stored unless its transaction committed.

A writer whose ``write`` is one statement (``one_statement=True``: the accepts, the relay
events, the webhook attempt log) runs it without ``BEGIN``/``COMMIT``: a single statement is
atomic and committed by itself, so a batch costs one round trip, not three.

Items submitted with ``urgent=True`` (a ``dispatched`` transition of anything but
low-priority work, while a list's items and the relays' reports flood the same writer) go in a
lane of their own, with its own writer and its own transaction: they never wait behind the
backlog, nor for the ordinary batch being written (under a list's load that batch takes tens of
milliseconds). With a ``key`` (the message id), one key's items keep their order: an urgent
item whose key still has an ordinary item waiting or being written goes behind it in the
ordinary lane, and an ordinary batch holding a key of the urgent lane waits until that urgent
item is written.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import asyncpg
import asyncpg.exceptions._base
import structlog

from store.held import HeldConnection

__all__ = ["Batcher", "ItemRejected", "is_data_error", "rejected", "write_isolating"]

T = TypeVar("T")
R = TypeVar("R")

log = structlog.get_logger("store.batcher")

WriteFn = Callable[[Any, Sequence[T]], Awaitable[Sequence[R]]]

# SQLSTATE classes that say nothing about the data: the connection or the server is the
# problem, and writing the items one by one would fail the same way.
_NOT_DATA_CLASSES = frozenset({"08", "53", "57", "58", "F0", "XX"})


def is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL (or asyncpg's argument encoding) refusing the *data* — a
    NUL in a text value, a broken constraint, a bad argument — rather than a lost connection,
    a shutting-down server or exhausted resources."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] not in _NOT_DATA_CLASSES
    # asyncpg's client-side "invalid input for query argument" (an InterfaceError subclass).
    return isinstance(exc, asyncpg.exceptions._base.DataError)


class ItemRejected(Exception):
    """The database refused this item (a data error); the rest of its batch was committed.

    ``__cause__`` is the database's exception."""

    def __init__(self, writer: str, cause: BaseException) -> None:
        super().__init__(f"{writer}: item refused by the database: {cause!r}")
        self.writer = writer


class Batcher(Generic[T, R]):
    """Collects items and writes them in batches through ``write``."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        write: WriteFn[T, R],
        *,
        name: str,
        max_batch: int = 1000,
        key: Callable[[T], Hashable] | None = None,
        one_statement: bool = False,
    ) -> None:
        self.name = name
        self._one_statement = one_statement
        """``write`` runs exactly one statement, atomic by itself: a batch is written without
        ``BEGIN``/``COMMIT`` around it (one round trip instead of three; the statement's own
        commit is done when it returns). Isolating refused items still uses a transaction."""
        self._held = {True: HeldConnection(pool), False: HeldConnection(pool)}
        """Each lane's connection, kept between its batches (:mod:`store.held`)."""
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._urgent: list[tuple[T, asyncio.Future[R]]] = []
        """Items of the urgent lane, written by a writer of their own."""
        self._key = key
        self._waiting: Counter[Hashable] = Counter()
        """Keys of the ordinary items waiting or being written (with a ``key`` only)."""
        self._urgent_keys: Counter[Hashable] = Counter()
        """Keys of the urgent items waiting or being written (with a ``key`` only)."""
        self._urgent_written = asyncio.Event()
        """Set (and replaced) each time an urgent batch is done."""
        self._wake = asyncio.Event()
        self._wake_urgent = asyncio.Event()
        self.batches = 0
        """Transactions committed."""
        self.items = 0
        """Items committed (refused ones are not counted)."""

    async def submit(self, item: T, *, urgent: bool = False) -> R:
        """Queue ``item`` and wait until its batch is committed; return its result. ``urgent``:
        in the lane written first (see the module docstring)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue(item, future, urgent)
        return await future

    def submit_nowait(self, item: T, *, urgent: bool = False) -> asyncio.Future[R]:
        """Queue ``item``; the returned future resolves at commit (callers may ignore it)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume_exception)
        self._queue(item, future, urgent)
        return future

    def _queue(self, item: T, future: asyncio.Future[R], urgent: bool) -> None:
        key = self._key
        if urgent and (key is None or not self._waiting or key(item) not in self._waiting):
            self._urgent.append((item, future))
            if key is not None:
                self._urgent_keys[key(item)] += 1
            self._wake_urgent.set()
        else:
            self._pending.append((item, future))
            if key is not None:
                self._waiting[key(item)] += 1
            self._wake.set()

    @property
    def backlog(self) -> int:
        """Items waiting for the next batch."""
        return len(self._pending) + len(self._urgent)

    async def run(self) -> None:
        """The writer task: write batches until cancelled (what is pending stays for ``close``);
        the urgent lane's writer runs beside the ordinary one."""
        async with asyncio.TaskGroup() as lanes:
            lanes.create_task(self._run_lane(urgent=True))
            lanes.create_task(self._run_lane(urgent=False))

    async def _run_lane(self, *, urgent: bool) -> None:
        wake = self._wake_urgent if urgent else self._wake
        write = self._write_urgent_batch if urgent else self._write_ordinary_batch
        while True:
            await wake.wait()
            wake.clear()
            while self._urgent if urgent else self._pending:
                await write()

    async def close(self) -> None:
        """At shutdown, after the writer task stopped: write what is pending, fail the rest,
        give the lanes' connections back."""
        try:
            while self._urgent:
                await self._write_urgent_batch()
            while self._pending:
                await self._write_ordinary_batch()
        finally:
            for held in self._held.values():
                await held.release()
            for _, future in self._urgent + self._pending:
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.name}: writer stopped"))
            self._urgent.clear()
            self._pending.clear()
            self._waiting.clear()
            self._urgent_keys.clear()

    async def _write_urgent_batch(self) -> None:
        batch, self._urgent = self._urgent[: self._max_batch], self._urgent[self._max_batch :]
        try:
            await self._write_batch(batch, self._held[True])
        finally:
            self._release_keys(self._urgent_keys, batch)
            written, self._urgent_written = self._urgent_written, asyncio.Event()
            written.set()

    async def _write_ordinary_batch(self) -> None:
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        try:
            if self._key is not None:
                key = self._key
                while self._urgent_keys and any(key(item) in self._urgent_keys for item, _ in batch):
                    await self._urgent_written.wait()  # that key's urgent item goes first
            await self._write_batch(batch, self._held[False])
        finally:
            self._release_keys(self._waiting, batch)

    def _release_keys(self, keys: Counter[Hashable], batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        if self._key is None:
            return
        key = self._key
        for item, _ in batch:
            k = key(item)
            if keys[k] <= 1:
                keys.pop(k, None)
            else:
                keys[k] -= 1

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]], held: HeldConnection) -> None:
        items = [item for item, _ in batch]
        try:
            async with held.use() as conn:
                if self._one_statement:
                    results = await self._write(conn, items)
                else:
                    async with conn.transaction():
                        results = await self._write(conn, items)
        except Exception as exc:
            if not is_data_error(exc):
                _fail(batch, exc)
            elif len(batch) == 1:
                _fail(batch, rejected(self.name, exc))
            else:
                await self._write_isolating(batch, held)
            return
        self.batches += 1
        self.items += len(items)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write_isolating(self, batch: list[tuple[T, asyncio.Future[R]]], held: HeldConnection) -> None:
        """After a data error: find the offending items by halving the batch, each half in its own
        savepoint, all in one transaction; the items that pass commit together."""
        try:
            async with held.use() as conn, conn.transaction():
                outcomes = await write_isolating(conn, self._write, [i for i, _ in batch], name=self.name)
        except Exception as exc:
            _fail(batch, exc)
            return
        self.batches += 1
        self.items += sum(not isinstance(outcome, ItemRejected) for outcome in outcomes)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, ItemRejected):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


async def write_isolating(
    conn: Any, write: WriteFn[T, R], items: Sequence[T], *, name: str
) -> list[R | ItemRejected]:
    """Write ``items`` with ``write`` inside the caller's transaction, isolating refused ones.

    Each attempt runs in a savepoint; on a data error the items are split in halves (order
    kept) until every refused item stands alone. Returns one outcome per item, in order: its
    result, or :class:`ItemRejected` (logged as ``batch.item_rejected``). Any other error
    propagates and the caller's transaction must be abandoned.
    """
    outcomes: list[R | ItemRejected] = []
    await _bisect(conn, write, list(items), name, outcomes)
    return outcomes


async def _bisect(
    conn: Any, write: WriteFn[T, R], items: list[T], name: str, outcomes: list[R | ItemRejected]
) -> None:
    try:
        async with conn.transaction():  # a savepoint inside the caller's transaction
            results = await write(conn, items)
    except Exception as exc:
        if not is_data_error(exc):
            raise
        if len(items) == 1:
            outcomes.append(rejected(name, exc))
            return
        middle = len(items) // 2
        await _bisect(conn, write, items[:middle], name, outcomes)
        await _bisect(conn, write, items[middle:], name, outcomes)
        return
    outcomes.extend(results)


def rejected(name: str, exc: BaseException) -> ItemRejected:
    """Log a refused item and wrap the database's exception for its caller."""
    log.error("batch.item_rejected", writer=name, error=repr(exc))
    item_error = ItemRejected(name, exc)
    item_error.__cause__ = exc
    return item_error


def _fail(batch: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
