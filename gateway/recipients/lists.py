"""Recipient lists: named sets of directory entries. A list holds ids, not copies, so a
recipient's current name, number and opt-out are what a list send will use; deleting a
recipient takes it out of every list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.limits import too_many
from gateway.recipients.directory import Db, too_many_recipients
from gateway.recipients.model import MAX_LISTS, MAX_RECIPIENTS, Recipient, recipient_from_row
from gateway.recipients.search import search_grams
from store import queries as q
from store.database import Conn

__all__ = [
    "RecipientList",
    "add_members",
    "create_list",
    "delete_list",
    "get_list",
    "list_lists",
    "list_members",
    "remove_members",
    "rename_list",
]


class RecipientList(msgspec.Struct, kw_only=True):
    """A list as the API shows it."""

    id: str
    name: str
    size: int
    """Members right now."""
    created_at: datetime
    updated_at: datetime


def _list(r: Any) -> RecipientList:
    return RecipientList(
        id=r["id"], name=r["name"], size=r["size"], created_at=r["created_at"], updated_at=r["updated_at"]
    )


async def _owned_ids(conn: Conn, account_id: str, recipient_ids: list[str]) -> list[str]:
    """``recipient_ids`` (deduplicated), all of which must be the account's; validation_error
    naming those that are not (another account's id is unknown like a made-up one)."""
    wanted = list(dict.fromkeys(recipient_ids))
    owned = {r["id"] for r in await conn.fetch(q.RECIPIENT_IDS_OWNED, account_id, wanted)}
    unknown = [i for i in wanted if i not in owned]
    if unknown:
        raise ApiError(
            "validation_error",
            f"{len(unknown)} recipient ids are not in this account's directory",
            {
                "reason": "unknown_recipients",
                "fields": {"recipient_ids": "unknown ids"},
                "unknown": unknown[:20],
            },
        )
    return wanted


async def _ids_of_phones(conn: Conn, account_id: str, phones: list[str]) -> list[str]:
    """Directory ids of these numbers (E.164); numbers not in it are added with an empty name."""
    wanted = list(dict.fromkeys(phones))
    if not wanted:
        return []
    await conn.execute(
        q.RECIPIENT_ENSURE_PHONES,
        account_id,
        [new_id("rcp") for _ in wanted],
        wanted,
        [" ".join(search_grams("", p)) for p in wanted],
    )
    if await conn.fetchval(q.RECIPIENT_COUNT, account_id) > MAX_RECIPIENTS:
        raise too_many_recipients()
    return [r["id"] for r in await conn.fetch(q.RECIPIENT_IDS_BY_PHONES, account_id, wanted)]


async def create_list(conn: Conn, account_id: str, name: str, recipient_ids: list[str]) -> RecipientList:
    """A new list, optionally with members; validation_error at the account's ceiling."""
    async with conn.transaction():
        if await conn.fetchval(q.RECIPIENT_LIST_COUNT, account_id) >= MAX_LISTS:
            raise too_many("recipient_lists", MAX_LISTS, "recipient lists")
        ids = await _owned_ids(conn, account_id, recipient_ids)
        list_id = new_id("lst")
        await conn.execute(q.RECIPIENT_LIST_INSERT, list_id, account_id, name)
        if ids:
            await conn.fetchval(q.RECIPIENT_LIST_ADD, list_id, ids)
        row = await conn.fetchrow(q.RECIPIENT_LIST_GET, list_id, account_id)
    return _list(row)


async def get_list(db: Db, account_id: str, list_id: str) -> RecipientList | None:
    """One list of the account, or None."""
    row = await db.fetchrow(q.RECIPIENT_LIST_GET, list_id, account_id)
    return None if row is None else _list(row)


async def list_lists(db: Db, account_id: str, cursor: str, limit: int) -> list[RecipientList]:
    """Up to ``limit`` lists after ``cursor``, in id order."""
    return [_list(r) for r in await db.fetch(q.RECIPIENT_LIST_LIST, account_id, cursor, limit)]


async def rename_list(db: Db, account_id: str, list_id: str, name: str) -> RecipientList | None:
    """Give a list a new name; None when the account has no such list."""
    if await db.fetchval(q.RECIPIENT_LIST_RENAME, list_id, account_id, name) is None:
        return None
    return await get_list(db, account_id, list_id)


async def delete_list(db: Db, account_id: str, list_id: str) -> bool:
    """Remove a list (its recipients stay in the directory); False when there was none."""
    return await db.fetchval(q.RECIPIENT_LIST_DELETE, list_id, account_id) is not None


async def add_members(
    conn: Conn, account_id: str, list_id: str, recipient_ids: list[str], phones: list[str]
) -> tuple[RecipientList, int] | None:
    """Add directory entries and numbers (E.164; new ones join the directory) to a list;
    ``(list, how many were not members yet)``, or None when there is no such list."""
    async with conn.transaction():
        if await conn.fetchval(q.RECIPIENT_LIST_LOCK, list_id, account_id) is None:
            return None
        ids = await _owned_ids(conn, account_id, recipient_ids)
        ids += await _ids_of_phones(conn, account_id, phones)
        added = int(await conn.fetchval(q.RECIPIENT_LIST_ADD, list_id, list(dict.fromkeys(ids))))
        await conn.execute(q.RECIPIENT_LIST_TOUCH, list_id)
        row = await conn.fetchrow(q.RECIPIENT_LIST_GET, list_id, account_id)
    return _list(row), added


async def remove_members(
    conn: Conn, account_id: str, list_id: str, recipient_ids: list[str], phones: list[str]
) -> tuple[RecipientList, int] | None:
    """Take recipients (by id or E.164 number) out of a list; they stay in the directory.
    Ids and numbers that are not members are ignored. ``(list, how many left)`` or None."""
    async with conn.transaction():
        if await conn.fetchval(q.RECIPIENT_LIST_LOCK, list_id, account_id) is None:
            return None
        ids = list(recipient_ids)
        if phones:
            ids += [r["id"] for r in await conn.fetch(q.RECIPIENT_IDS_BY_PHONES, account_id, phones)]
        removed = int(await conn.fetchval(q.RECIPIENT_LIST_REMOVE, list_id, list(dict.fromkeys(ids))))
        await conn.execute(q.RECIPIENT_LIST_TOUCH, list_id)
        row = await conn.fetchrow(q.RECIPIENT_LIST_GET, list_id, account_id)
    return _list(row), removed


async def list_members(db: Db, list_id: str, cursor: str, limit: int) -> list[Recipient]:
    """Up to ``limit`` members after ``cursor`` (recipient id order); the caller checked that
    the list is the account's."""
    return [recipient_from_row(r) for r in await db.fetch(q.RECIPIENT_LIST_MEMBERS, list_id, cursor, limit)]
