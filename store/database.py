"""Connection pool, schema application, and what "the database is down" means.

The pool never lets a caller wait for ever: connecting times out after ``CONNECT_TIMEOUT``, taking
a connection from a busy pool after ``ACQUIRE_TIMEOUT``, a statement after ``COMMAND_TIMEOUT``.
Closed connections (server stopped or restarted) are replaced on the next acquire, so the pool
reconnects by itself once PostgreSQL is back. :data:`DATABASE_DOWN` is the tuple of exceptions
that mean "unreachable, try later" rather than a bug.

``schema.sql`` is the truth: it is idempotent and applied on every start under an advisory
lock, which upgrades an older database in place. A database whose schema is newer than this
build refuses to start rather than be written by old code.

Every connection the gateway opens (the pool's, :func:`connect`'s, the LISTEN connections) gets
:func:`set_codecs`: ``jsonb`` and ``json`` columns read as Python values and are written from
Python values (dicts, lists, Structs, ``msgspec.Raw`` for JSON already encoded) with msgspec, in
the binary format so ``COPY`` (``copy_records_to_table``) takes them too. Nothing outside
``store/`` encodes or decodes the JSON of a column.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Any, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "ACQUIRE_TIMEOUT",
    "DATABASE_DOWN",
    "SCHEMA_VERSION",
    "Conn",
    "Db",
    "SchemaTooNew",
    "apply_schema",
    "connect",
    "create_pool",
    "schema_sql",
    "set_codecs",
]

_SCHEMA_LOCK = 7_303_110_251  # arbitrary advisory-lock key shared by every relaygate process

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
"""A connection, pooled or not: what query helpers accept."""

Db: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any] | asyncpg.Pool[Any]"
"""A connection or the pool: what a store function that runs one statement accepts."""


CONNECT_TIMEOUT = 2.0
ACQUIRE_TIMEOUT = 10.0
"""Seconds a caller may wait for a pooled connection (including connecting one) instead of for
ever. Generous, because a busy pool under a burst is not an outage; a stopped or unreachable
server fails much sooner (connection refused at once, a connect attempt after
``CONNECT_TIMEOUT``)."""
COMMAND_TIMEOUT = 30.0

DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # 57P01 admin shutdown, 57P02 crash, 57P03 starting up
    asyncpg.exceptions.InternalClientError,  # a connection's state machine broken by the server vanishing
)
"""Exceptions meaning the database cannot be reached now (refused, reset, shutting down,
starting up, timed out): callers answer ``unavailable`` or retry later."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer relaygate than this one."""


def schema_sql() -> str:
    """The text of ``schema.sql`` as installed with the package (works for non-editable installs)."""
    return resources.files("store").joinpath("schema.sql").read_text(encoding="utf-8")


def _declared_version(sql: str) -> int:
    match = re.search(r"INSERT INTO schema_version \(singleton, version\) VALUES \(true, (\d+)\)", sql)
    if match is None:  # pragma: no cover - guards against a broken edit of schema.sql
        raise RuntimeError("schema.sql does not declare its version")
    return int(match.group(1))


SCHEMA_VERSION = _declared_version(schema_sql())


async def apply_schema(conn: Conn, sql: str | None = None) -> int:
    """Apply ``schema.sql`` (or ``sql``) in one transaction; return the resulting version."""
    text = schema_sql() if sql is None else sql
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        if exists:
            current = await conn.fetchval("SELECT version FROM schema_version")
            if current is not None and current > _declared_version(text):
                raise SchemaTooNew(f"database schema v{current} is newer than this build's v{SCHEMA_VERSION}")
        await conn.execute(text)
        version: int = await conn.fetchval("SELECT version FROM schema_version")
        return version


_JSONB_VERSION = b"\x01"  # the binary jsonb format: a version byte, then the JSON text
_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + _json_encode(value)


def _decode_jsonb(data: bytes) -> Any:
    return _json_decode(data[1:])


def _encode_json(value: Any) -> str:
    return _json_encode(value).decode()


async def set_codecs(conn: asyncpg.Connection[Any]) -> None:
    """``jsonb``/``json`` as Python values on ``conn`` (the pool's ``init``; :func:`connect` calls it)."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary", encoder=_encode_jsonb, decoder=_decode_jsonb
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", format="text", encoder=_encode_json, decoder=_json_decode
    )


async def connect(url: str, *, timeout: float = 5.0) -> asyncpg.Connection[Any]:
    """One plain connection with the codecs (CLI commands, migrations, LISTEN)."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(url, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            await set_codecs(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


class _BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose ``acquire`` (and so ``fetch``/``execute``/…) waits at most
    ``ACQUIRE_TIMEOUT`` by default instead of for ever."""

    def acquire(self, *, timeout: float | None = None) -> Any:
        """A connection within ``timeout`` (default ``ACQUIRE_TIMEOUT``) or ``TimeoutError``."""
        return super().acquire(timeout=ACQUIRE_TIMEOUT if timeout is None else timeout)


async def _end_transaction_only(conn: asyncpg.Connection[Any]) -> None:
    """What a connection needs on its way back to the pool: nothing more than asyncpg's own
    ``_reset`` (which already rolled back any open transaction and dropped listeners). asyncpg's
    default reset also runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL`` — one more round trip per release, ~20 % of the gateway's CPU on the accept path —
    for session state relaygate never leaves on a pooled connection (locks are
    ``pg_advisory_xact_lock``, settings ``SET LOCAL``, cursors live in transactions, LISTEN
    has connections of its own)."""


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool[Any]:
    """The gateway's pool: bounded waits everywhere, so a dead database means a fast error."""
    pool: asyncpg.Pool[Any] = _BoundedPool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        connect=None,
        setup=None,
        init=set_codecs,
        reset=_end_transaction_only,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        timeout=CONNECT_TIMEOUT,
        command_timeout=COMMAND_TIMEOUT,
    )
    await pool
    return pool
