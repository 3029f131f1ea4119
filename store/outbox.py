"""Writing events to the outbox (the ``events`` table) in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import msgspec

from store.database import Conn

__all__ = ["EventRow", "insert_events"]

EventRow: TypeAlias = "tuple[str, str, str, msgspec.Struct]"
"""``(id, account_id, type, data)`` of a new outbox row; ``data`` is written by the jsonb codec."""

_INSERT_MANY = """
INSERT INTO events (id, account_id, type, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
"""


async def insert_events(conn: Conn, rows: Sequence[EventRow]) -> list[None]:
    """Insert events with one statement.

    Usable directly as a :class:`store.batcher.Batcher` write function.
    """
    ids, accounts, types, payloads = (list(column) for column in zip(*rows, strict=True))
    await conn.execute(_INSERT_MANY, ids, accounts, types, payloads)
    return [None] * len(rows)
