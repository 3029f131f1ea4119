"""Group commit against real PostgreSQL: an item the database refuses fails alone and the rest
of its batch commits; a lost connection still fails the whole batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from store.batched_read import BatchedRead
from store.batcher import Batcher, ItemRejected, is_data_error
from tests.harness import TcpProxy


async def _insert(conn: Any, items: Sequence[str]) -> list[int]:
    rows = await conn.fetch("INSERT INTO scratch (label) SELECT unnest($1::text[]) RETURNING id", list(items))
    return [r["id"] for r in rows]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A pool on the test database with a scratch table that refuses the label 'refused'."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await pool.execute(
        "CREATE TABLE scratch (id bigserial PRIMARY KEY, label text NOT NULL CHECK (label <> 'refused'))"
    )
    yield pool
    await pool.close()


async def _labels(pool: asyncpg.Pool[Any]) -> list[str]:
    return [r["label"] for r in await pool.fetch("SELECT label FROM scratch ORDER BY id")]


async def _run_batch(batcher: Batcher[str, int], items: list[str]) -> list[int | BaseException]:
    """Submit ``items`` while the writer is parked, so that they form one batch; then write it."""
    futures = [batcher.submit_nowait(item) for item in items]
    writer = asyncio.create_task(batcher.run())
    try:
        return list(await asyncio.gather(*futures, return_exceptions=True))
    finally:
        writer.cancel()


@pytest.mark.parametrize("bad", ["nul\x00inside", "refused", "lone \ud800 surrogate"])
async def test_one_bad_item_fails_alone_and_the_others_commit(pool: asyncpg.Pool[Any], bad: str) -> None:
    """Among 200 items one the database refuses (NUL, a CHECK, a lone surrogate asyncpg cannot
    encode) gets ItemRejected with the database's error as cause; the other 199 commit in order,
    in one batch."""
    batcher: Batcher[str, int] = Batcher(pool, _insert, name="scratch")
    items = [f"item {i}" for i in range(200)]
    items[137] = bad
    results = await _run_batch(batcher, items)
    rejected = results[137]
    assert isinstance(rejected, ItemRejected) and is_data_error(rejected.__cause__ or Exception())
    assert "scratch" in str(rejected)
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 137)
    assert await _labels(pool) == [item for i, item in enumerate(items) if i != 137]
    assert batcher.batches == 1 and batcher.items == 199


@pytest.mark.parametrize("one_statement", [False, True])
async def test_a_one_statement_writer_runs_without_a_transaction(
    pool: asyncpg.Pool[Any], one_statement: bool
) -> None:
    """``one_statement``: the write runs outside BEGIN/COMMIT (its statement commits by itself,
    before submit returns); a refused item still fails alone, the rest commit."""
    in_transaction: list[bool] = []

    async def insert(conn: Any, items: Sequence[str]) -> list[int]:
        in_transaction.append(conn.is_in_transaction())
        return await _insert(conn, items)

    batcher: Batcher[str, int] = Batcher(pool, insert, name="scratch", one_statement=one_statement)
    results = await _run_batch(batcher, ["a", "b", "c"])
    assert all(isinstance(r, int) for r in results)
    assert in_transaction == [not one_statement]
    assert await _labels(pool) == ["a", "b", "c"]  # read on another connection: committed
    results = await _run_batch(batcher, ["d", "refused", "e"])
    assert (
        isinstance(results[1], ItemRejected) and isinstance(results[0], int) and isinstance(results[2], int)
    )
    assert await _labels(pool) == ["a", "b", "c", "d", "e"]


async def test_several_bad_items_in_one_batch(pool: asyncpg.Pool[Any]) -> None:
    """Every refused item is found (first, last and adjacent ones), every good one commits."""
    batcher: Batcher[str, int] = Batcher(pool, _insert, name="scratch")
    items = [f"item {i}" for i in range(50)]
    bad = {0, 20, 21, 49}
    for i in bad:
        items[i] = "refused"
    results = await _run_batch(batcher, items)
    assert {i for i, r in enumerate(results) if isinstance(r, ItemRejected)} == bad
    assert await _labels(pool) == [item for i, item in enumerate(items) if i not in bad]


async def test_a_lone_bad_item_is_rejected(pool: asyncpg.Pool[Any]) -> None:
    """A batch of one refused item raises ItemRejected from submit; the writer keeps running."""
    batcher: Batcher[str, int] = Batcher(pool, _insert, name="scratch")
    writer = asyncio.create_task(batcher.run())
    try:
        with pytest.raises(ItemRejected):
            await batcher.submit("refused")
        assert isinstance(await batcher.submit("fine"), int)
        assert not writer.done()
    finally:
        writer.cancel()
    assert await _labels(pool) == ["fine"]


async def test_a_lost_connection_fails_the_whole_batch(database_url: str) -> None:
    """A connection cut is not a data error: every caller of the batch gets the connection error
    (so the API can answer unavailable) and nothing is committed."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    pool = await asyncpg.create_pool(proxy.url, min_size=1, max_size=1)
    await pool.execute("CREATE TABLE scratch (id bigserial PRIMARY KEY, label text NOT NULL)")
    batcher: Batcher[str, int] = Batcher(pool, _insert, name="scratch")
    try:
        await proxy.stop()
        results = await _run_batch(batcher, ["a", "b", "c"])
        assert all(isinstance(r, BaseException) and not isinstance(r, ItemRejected) for r in results), results
        assert not any(is_data_error(r) for r in results if isinstance(r, BaseException))
    finally:
        pool.terminate()
        await proxy.stop()
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM scratch") == 0
    finally:
        await conn.close()


class _Gate:
    """A write function that inserts like ``_insert`` but holds a batch containing a label that
    starts with ``hold`` until ``release`` is set (``held`` says one is waiting)."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, conn: Any, items: Sequence[str]) -> list[int]:
        if any(item.startswith("hold") for item in items):
            self.held.set()
            await self.release.wait()
        return await _insert(conn, items)


async def test_urgent_items_do_not_wait_for_the_ordinary_batch_being_written(pool: asyncpg.Pool[Any]) -> None:
    """Urgent items are written by a writer of their own, in their own transaction: they commit
    while an ordinary batch is still being written and before the backlog behind it; one whose
    key still has an ordinary item waiting stays behind that item (one key's items keep their
    order)."""
    gate = _Gate()
    batcher: Batcher[str, int] = Batcher(pool, gate, name="scratch", max_batch=50, key=lambda s: s[:1])
    bulk = [batcher.submit_nowait("hold")] + [batcher.submit_nowait(f"b{i}") for i in range(120)]
    writer = asyncio.create_task(batcher.run())
    try:
        await asyncio.wait_for(gate.held.wait(), 5)  # the first ordinary batch is being written
        urgent = [batcher.submit_nowait(f"u{i}", urgent=True) for i in range(3)]
        behind = batcher.submit_nowait("b-after", urgent=True)  # key "b" has ordinary items waiting
        await asyncio.wait_for(asyncio.gather(*urgent), 5)
        assert await _labels(pool) == ["u0", "u1", "u2"]
        assert not any(f.done() for f in bulk) and not behind.done()
        gate.release.set()
        await asyncio.gather(*bulk, behind)
    finally:
        writer.cancel()
    labels = await _labels(pool)
    assert labels[:3] == ["u0", "u1", "u2"] and labels[-1] == "b-after"
    assert labels[3:-1] == ["hold"] + [f"b{i}" for i in range(120)]
    assert batcher.batches == 1 + 3  # the urgent batch, then 50 + 50 + 21 ordinary items


async def test_an_ordinary_item_waits_for_the_urgent_item_of_its_key(pool: asyncpg.Pool[Any]) -> None:
    """An ordinary item whose key has an urgent item being written is written after it, not in
    the ordinary writer's concurrent transaction."""
    gate = _Gate()
    batcher: Batcher[str, int] = Batcher(pool, gate, name="scratch", key=lambda s: s.split("-")[-1])
    writer = asyncio.create_task(batcher.run())
    try:
        first = batcher.submit_nowait("hold-x", urgent=True)
        await asyncio.wait_for(gate.held.wait(), 5)
        later = batcher.submit_nowait("then-x")
        await asyncio.sleep(0.2)
        assert not later.done() and await _labels(pool) == []
        gate.release.set()
        await asyncio.gather(first, later)
    finally:
        writer.cancel()
    assert await _labels(pool) == ["hold-x", "then-x"]


async def test_batched_reads_share_a_query_and_a_failure_stays_in_its_batch(pool: asyncpg.Pool[Any]) -> None:
    """Keys asked while a read runs are read together by the next query (one lone key first, at
    once); a query that fails fails only its own batch's callers, and the next batch reads."""
    await pool.execute("INSERT INTO scratch (label) SELECT 'k' || i FROM generate_series(1, 20) i")
    calls: list[list[str]] = []

    async def labels(db: Any, keys: Sequence[str]) -> dict[str, int]:
        calls.append(list(keys))
        if "boom" in keys:
            raise ConnectionError("database went away")
        rows = await db.fetch("SELECT label, id FROM scratch WHERE label = ANY($1::text[])", list(keys))
        return {r["label"]: r["id"] for r in rows}

    reads: BatchedRead[str, int] = BatchedRead(pool, labels, missing=0)
    first = asyncio.ensure_future(reads.get("k1"))
    await asyncio.sleep(0)  # its read is under way
    doomed = [asyncio.ensure_future(reads.get(k)) for k in ("k2", "boom")]
    await asyncio.wait(doomed)
    later = await asyncio.gather(*(reads.get(f"k{i}") for i in range(3, 21)), reads.get("nope"))
    assert await first == 1
    assert all(isinstance(f.exception(), ConnectionError) for f in doomed)
    assert later == [*range(3, 21), 0]
    assert calls[:2] == [["k1"], ["k2", "boom"]] and len(calls) == 3 and reads.queries == 3
