"""The gateway's pool without asyncpg's reset query: a connection given back inside a
transaction still comes back rolled back, so nothing uncommitted leaks to the next caller."""

from __future__ import annotations

import asyncpg
import pytest

from store.database import create_pool


async def test_a_connection_released_in_a_transaction_is_rolled_back(database_url: str) -> None:
    """Work left uncommitted by a caller (a transaction begun by hand, or an aborted one) is
    rolled back when its connection returns to the pool; the next caller of the same connection
    starts outside any transaction and sees none of it."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        await pool.execute("CREATE TABLE scratch (label text)")
        async with pool.acquire() as conn:
            await conn.execute("BEGIN; SELECT pg_advisory_xact_lock(42)")
            await conn.execute("INSERT INTO scratch VALUES ('uncommitted')")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO scratch VALUES ('aborted')")
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.execute("SELECT 1/0")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM scratch") == 0
            # the transaction lock went with its transaction
            assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await pool.close()
