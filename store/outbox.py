"""Writing events to the outbox (the ``events`` table) in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store import queries as q

__all__ = ["insert_events"]


async def insert_events(conn: Any, rows: Sequence[tuple[str, str, str, str]]) -> list[None]:
    """Insert events ``(id, account_id, type, data_json)`` with one statement.

    Usable directly as a :class:`store.batcher.Batcher` write function.
    """
    ids, accounts, types, payloads = (list(column) for column in zip(*rows, strict=True))
    await conn.execute(q.EVENT_INSERT_MANY, ids, accounts, types, payloads)
    return [None] * len(rows)
