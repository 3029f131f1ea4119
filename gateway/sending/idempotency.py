"""``Idempotency-Key`` on the send endpoints: the first answer for (account, key) is stored in
the transaction that did the work, and replayed for the same body; the same key with another
body is a ``conflict``. Concurrent requests with one key do the work once: the second one's
insert of the key waits for the first transaction and then finds the key taken."""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

import msgspec

from gateway.errors import ApiError
from store import idempotency as store

__all__ = ["replay", "store_answer"]

T = TypeVar("T")


def _digest(request_body: bytes) -> bytes:
    return hashlib.sha256(request_body).digest()


async def store_answer(
    conn: Any, account_id: str, key: str, request_body: bytes, answer: msgspec.Struct
) -> bool:
    """In the caller's transaction: record ``answer`` as the key's first answer; False when the
    key is taken already (the caller then rolls its work back and :func:`replay` s)."""
    return await store.record_answer(
        conn, account_id=account_id, key=key, request_hash=_digest(request_body), response=answer
    )


async def replay(conn: Any, account_id: str, key: str, request_body: bytes, answer_type: type[T]) -> T | None:
    """The key's first answer (None when the key is unused); ``conflict`` when it came with
    another body."""
    stored = await store.first_answer(conn, account_id=account_id, key=key)
    if stored is None:
        return None
    if stored.request_hash != _digest(request_body):
        raise ApiError(
            "conflict",
            "this Idempotency-Key was used with a different request body",
            {"idempotency_key": key},
        )
    return msgspec.convert(stored.response, answer_type)
