"""Connection pool and schema application.

``schema.sql`` is the truth: it is idempotent and applied on every start under an advisory
lock, which upgrades an older database in place. A database whose schema is newer than this
build refuses to start rather than be written by old code.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = ["SCHEMA_VERSION", "Conn", "SchemaTooNew", "apply_schema", "connect", "create_pool", "schema_sql"]

_SCHEMA_LOCK = 7_303_110_251  # arbitrary advisory-lock key shared by every relaygate process

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
"""A connection, pooled or not: what query helpers accept."""


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


async def connect(url: str, *, timeout: float = 5.0) -> asyncpg.Connection[Any]:
    """One plain connection (CLI commands, migrations)."""
    return await asyncpg.connect(url, timeout=timeout)


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool[Any]:
    """The gateway's pool. Connect attempts time out quickly so health checks never hang."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=2.0,
        command_timeout=30.0,
        max_inactive_connection_lifetime=300.0,
    )
    assert pool is not None
    return pool
