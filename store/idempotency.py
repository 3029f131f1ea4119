"""``Idempotency-Key`` answers: the SQL and the typed functions that run it."""

from __future__ import annotations

from typing import Any

import msgspec

from store.database import Db
from store.rows import one

__all__ = ["StoredAnswer", "first_answer", "purge_answers", "record_answer"]


class StoredAnswer(msgspec.Struct, frozen=True):
    """The first answer given for a key, and a digest of the request body it answered."""

    request_hash: bytes
    response: Any
    """The answer as stored (decoded by the jsonb codec)."""


_INSERT = """
INSERT INTO idempotency_keys (account_id, key, request_hash, response) VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id, key) DO NOTHING RETURNING key
"""
_GET = "SELECT request_hash, response FROM idempotency_keys WHERE account_id = $1 AND key = $2"
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)"


async def record_answer(
    conn: Db, *, account_id: str, key: str, request_hash: bytes, response: msgspec.Struct
) -> bool:
    """Record the key's first answer; False when the key is taken already."""
    return await conn.fetchval(_INSERT, account_id, key, request_hash, response) is not None


async def first_answer(conn: Db, *, account_id: str, key: str) -> StoredAnswer | None:
    """The key's first answer, if the key was used."""
    return one(await conn.fetchrow(_GET, account_id, key), StoredAnswer)


async def purge_answers(conn: Db, *, older_than_seconds: float) -> None:
    """Drop answers older than the retention."""
    await conn.execute(_PURGE, older_than_seconds)
