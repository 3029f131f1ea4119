"""Recipient lists and their members: the SQL and the typed functions that run it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from store.database import Conn, Db
from store.recipients import COLUMNS, RecipientRow, recipient_row

__all__ = [
    "ListRow",
    "add_members",
    "count_lists",
    "delete_list",
    "get_list",
    "insert_list",
    "list_lists",
    "lock_list",
    "members",
    "remove_members",
    "rename_list",
    "touch_list",
]


class ListRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``recipient_lists`` with its member count."""

    id: str
    name: str
    size: int
    created_at: datetime
    updated_at: datetime


# --- recipient lists --------------------------------------------------------------------------

_LIST_COLUMNS = """
l.id, l.name, (SELECT count(*) FROM recipient_list_members m WHERE m.list_id = l.id) AS size,
l.created_at, l.updated_at
"""
_LIST_COUNT = "SELECT count(*) FROM recipient_lists WHERE account_id = $1"
_LIST_INSERT = "INSERT INTO recipient_lists (id, account_id, name) VALUES ($1, $2, $3)"
_LIST_GET = f"SELECT {_LIST_COLUMNS} FROM recipient_lists l WHERE l.id = $1 AND l.account_id = $2"
_LIST_LOCK = "SELECT id FROM recipient_lists WHERE id = $1 AND account_id = $2 FOR UPDATE"
_LIST_LIST = f"""
SELECT {_LIST_COLUMNS} FROM recipient_lists l WHERE l.account_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3
"""
_LIST_RENAME = """
UPDATE recipient_lists SET name = $3, updated_at = now() WHERE id = $1 AND account_id = $2 RETURNING id
"""
_LIST_TOUCH = "UPDATE recipient_lists SET updated_at = now() WHERE id = $1"
_LIST_DELETE = "DELETE FROM recipient_lists WHERE id = $1 AND account_id = $2 RETURNING id"
_LIST_ADD = """
WITH added AS (
    INSERT INTO recipient_list_members (list_id, recipient_id)
    SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1
)
SELECT count(*) FROM added
"""
_LIST_REMOVE = """
WITH removed AS (
    DELETE FROM recipient_list_members WHERE list_id = $1 AND recipient_id = ANY($2::text[]) RETURNING 1
)
SELECT count(*) FROM removed
"""
_LIST_MEMBERS = f"""
SELECT {COLUMNS.replace("id, ", "r.id, ", 1).replace("metadata::text", "r.metadata::text")}
FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND m.recipient_id > $2 ORDER BY m.recipient_id LIMIT $3
"""


def _list(r: Any) -> ListRow:
    return ListRow(id=r[0], name=r[1], size=r[2], created_at=r[3], updated_at=r[4])


async def count_lists(db: Db, *, account_id: str) -> int:
    """The account's lists."""
    return int(await db.fetchval(_LIST_COUNT, account_id))


async def insert_list(db: Db, *, list_id: str, account_id: str, name: str) -> None:
    """A new, empty list."""
    await db.execute(_LIST_INSERT, list_id, account_id, name)


async def get_list(db: Db, *, account_id: str, list_id: str) -> ListRow | None:
    """One list of the account with its size."""
    row = await db.fetchrow(_LIST_GET, list_id, account_id)
    return None if row is None else _list(row)


async def lock_list(conn: Conn, *, account_id: str, list_id: str) -> bool:
    """Lock the account's list until the caller's transaction ends (member changes and list
    sends of one list queue up); False when there is no such list."""
    return await conn.fetchval(_LIST_LOCK, list_id, account_id) is not None


async def list_lists(db: Db, *, account_id: str, cursor: str, limit: int) -> list[ListRow]:
    """Up to ``limit`` lists after ``cursor`` in id order."""
    return [_list(r) for r in await db.fetch(_LIST_LIST, account_id, cursor, limit)]


async def rename_list(db: Db, *, account_id: str, list_id: str, name: str) -> bool:
    """Rename a list; False when the account has no such list."""
    return await db.fetchval(_LIST_RENAME, list_id, account_id, name) is not None


async def touch_list(conn: Conn, *, list_id: str) -> None:
    """Mark the list changed now."""
    await conn.execute(_LIST_TOUCH, list_id)


async def delete_list(db: Db, *, account_id: str, list_id: str) -> bool:
    """Remove a list (not its recipients); False when there was none."""
    return await db.fetchval(_LIST_DELETE, list_id, account_id) is not None


async def add_members(conn: Conn, *, list_id: str, recipient_ids: list[str]) -> int:
    """Add recipients (already checked to be the list's account's); how many were new."""
    return int(await conn.fetchval(_LIST_ADD, list_id, recipient_ids))


async def remove_members(conn: Conn, *, list_id: str, recipient_ids: list[str]) -> int:
    """Take recipients out of the list; how many were members."""
    return int(await conn.fetchval(_LIST_REMOVE, list_id, recipient_ids))


async def members(db: Db, *, list_id: str, cursor: str, limit: int) -> list[RecipientRow]:
    """Up to ``limit`` members after ``cursor`` in recipient id order."""
    return [recipient_row(r) for r in await db.fetch(_LIST_MEMBERS, list_id, cursor, limit)]
