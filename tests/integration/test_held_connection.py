"""A held connection against real PostgreSQL: kept between uses, back in the pool when idle,
after an error, or at release; a connection the server closed is replaced at the next use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from store.database import create_pool
from store.held import HeldConnection


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(database_url, min_size=1, max_size=3)
    yield pool
    await asyncio.wait_for(pool.close(), 5)  # nothing may still be held


async def _backend(conn: Any) -> int:
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


async def test_one_connection_serves_consecutive_uses_and_goes_back_when_idle(
    pool: asyncpg.Pool[Any],
) -> None:
    held = HeldConnection(pool, idle=0.2)
    pids = []
    for _ in range(5):
        async with held.use() as conn:
            pids.append(await _backend(conn))
        await asyncio.sleep(0.02)
    assert len(set(pids)) == 1 and held.holding()
    assert pool.get_idle_size() == pool.get_size() - 1
    await asyncio.sleep(0.5)
    assert not held.holding()
    assert pool.get_idle_size() == pool.get_size()


async def test_an_error_in_a_use_gives_the_connection_back_rolled_back(pool: asyncpg.Pool[Any]) -> None:
    held = HeldConnection(pool, idle=10.0)
    with pytest.raises(asyncpg.PostgresError):
        async with held.use() as conn, conn.transaction():
            await conn.execute("SELECT 1/0")
    assert not held.holding() and pool.get_idle_size() == pool.get_size()
    async with held.use() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT 2") == 2
    await held.release()
    assert not held.holding()


async def test_a_connection_the_server_closed_is_replaced(pool: asyncpg.Pool[Any], database_url: str) -> None:
    held = HeldConnection(pool, idle=10.0)
    async with held.use() as conn:
        first = await _backend(conn)
    admin = await asyncpg.connect(database_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the client notices the closed socket (the pool takes it back)
    async with held.use() as conn:
        assert await _backend(conn) != first
    await held.release()


async def test_release_gives_it_back_at_once(pool: asyncpg.Pool[Any]) -> None:
    held = HeldConnection(pool, idle=60.0)
    async with held.use() as conn:
        await conn.execute("SELECT 1")
    assert held.holding()
    await held.release()
    assert not held.holding() and pool.get_idle_size() == pool.get_size()


async def test_after_max_uses_the_connection_goes_back(
    pool: asyncpg.Pool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.held.MAX_USES", 3)
    held = HeldConnection(pool, idle=60.0)
    for _ in range(3):
        async with held.use() as conn:
            await conn.execute("SELECT 1")
    assert not held.holding()
    await held.release()  # waits for the hand-back in flight
    assert pool.get_idle_size() == pool.get_size()
