"""The typed store's foundations on real PostgreSQL: the jsonb/json codec on every connection the
gateway opens (pool and plain), COPY through it, and rows read into Structs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from store.database import connect, create_pool
from store.rows import many, one

NESTED = {"a": [1, 2.5, None, True], "b": {"c": {"d": "ü ✓ \n"}}, "e": []}


class _Row(msgspec.Struct, frozen=True):
    id: int
    doc: Any
    at: datetime | None
    tags: list[str] | None


class _Point(msgspec.Struct, frozen=True):
    x: int
    y: int


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A plain connection with the codecs and a scratch table with a jsonb column."""
    conn = await connect(database_url)
    await conn.execute("CREATE TABLE scratch (id int PRIMARY KEY, doc jsonb, at timestamptz, tags text[])")
    yield conn
    await conn.close()


async def test_jsonb_round_trip_nested_and_null(conn: asyncpg.Connection[Any]) -> None:
    """Python values go in and come out of jsonb as they were; SQL NULL is None; a Struct is encoded."""
    await conn.execute("INSERT INTO scratch (id, doc) VALUES (1, $1), (2, $2), (3, $3)", NESTED, None, "text")
    await conn.execute("INSERT INTO scratch (id, doc) VALUES (4, $1)", _Point(x=1, y=2))
    docs = {r["id"]: r["doc"] for r in await conn.fetch("SELECT id, doc FROM scratch")}
    assert docs == {1: NESTED, 2: None, 3: "text", 4: {"x": 1, "y": 2}}
    # stored as real JSON, not as a string holding JSON
    assert await conn.fetchval("SELECT doc->'b'->'c'->>'d' FROM scratch WHERE id = 1") == "ü ✓ \n"
    assert await conn.fetchval("SELECT jsonb_typeof(doc) FROM scratch WHERE id = 4") == "object"


async def test_jsonb_arrays_and_raw(conn: asyncpg.Connection[Any]) -> None:
    """``jsonb[]`` parameters take one value per element (unnest writes), ``msgspec.Raw`` is written as is."""
    await conn.execute(
        "INSERT INTO scratch (id, doc) SELECT * FROM unnest($1::int[], $2::jsonb[])",
        [1, 2, 3],
        [{"k": 1}, None, msgspec.Raw(b'[1,{"z":null}]')],
    )
    rows = await conn.fetch("SELECT doc FROM scratch ORDER BY id")
    assert [r["doc"] for r in rows] == [{"k": 1}, None, [1, {"z": None}]]


async def test_copy_writes_jsonb_through_the_codec(conn: asyncpg.Connection[Any]) -> None:
    """``copy_records_to_table`` (the recipients import) takes jsonb values in the binary format."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await conn.copy_records_to_table(
        "scratch",
        records=[(1, NESTED, at, ["x", "y"]), (2, None, None, None)],
        columns=["id", "doc", "at", "tags"],
    )
    rows = many(await conn.fetch("SELECT * FROM scratch ORDER BY id"), _Row)
    assert rows == [_Row(id=1, doc=NESTED, at=at, tags=["x", "y"]), _Row(id=2, doc=None, at=None, tags=None)]


async def test_json_type_and_the_pool(database_url: str) -> None:
    """The gateway's pool has the codecs too, for ``json`` (text format) as well as ``jsonb``."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT $1::json", NESTED) == NESTED
        assert await pool.fetchval("SELECT $1::jsonb", NESTED) == NESTED
        assert await pool.fetchval("SELECT '{\"n\": 1}'::json") == {"n": 1}
    finally:
        await pool.close()


async def test_rows_into_structs(conn: asyncpg.Connection[Any]) -> None:
    """``one`` maps a row (or no row) to its Struct; a row that does not fit its Struct is an error."""
    await conn.execute("INSERT INTO scratch (id, doc) VALUES (1, $1)", {"x": 1, "y": 2})
    assert one(await conn.fetchrow("SELECT * FROM scratch WHERE id = 1"), _Row) == _Row(
        id=1, doc={"x": 1, "y": 2}, at=None, tags=None
    )
    assert one(await conn.fetchrow("SELECT * FROM scratch WHERE id = 2"), _Row) is None
    assert one(await conn.fetchrow("SELECT (doc->>'x')::int AS x, 2 AS y FROM scratch"), _Point) == _Point(
        1, 2
    )
    with pytest.raises(msgspec.ValidationError):
        one(await conn.fetchrow("SELECT 'one' AS x, 2 AS y"), _Point)
