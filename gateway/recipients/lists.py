"""Recipient lists: named sets of directory entries. A list holds ids, not copies, so a
recipient's current name, number and opt-out are what a list send will use; deleting a
recipient takes it out of every list."""

from __future__ import annotations

from datetime import datetime

import msgspec

from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.limits import too_many
from gateway.recipients.directory import too_many_recipients
from gateway.recipients.model import MAX_LISTS, MAX_RECIPIENTS, Recipient, recipient_from_row
from gateway.recipients.search import search_grams
from store import lists as lists_store
from store import recipients as store
from store.database import Conn, Db
from store.lists import ListRow

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


def _list(r: ListRow | None) -> RecipientList:
    assert r is not None  # read in the transaction that made or locked it
    return RecipientList(id=r.id, name=r.name, size=r.size, created_at=r.created_at, updated_at=r.updated_at)


async def _owned_ids(conn: Conn, account_id: str, recipient_ids: list[str]) -> list[str]:
    """``recipient_ids`` (deduplicated), all of which must be the account's; validation_error
    naming those that are not (another account's id is unknown like a made-up one)."""
    wanted = list(dict.fromkeys(recipient_ids))
    owned = await store.owned_ids(conn, account_id=account_id, recipient_ids=wanted)
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
    await store.ensure_phones(
        conn,
        account_id=account_id,
        new_ids=[new_id("rcp") for _ in wanted],
        phones=wanted,
        grams=[" ".join(search_grams("", p)) for p in wanted],
    )
    if await store.count(conn, account_id=account_id) > MAX_RECIPIENTS:
        raise too_many_recipients()
    return await store.ids_by_phones(conn, account_id=account_id, phones=wanted)


async def create_list(conn: Conn, account_id: str, name: str, recipient_ids: list[str]) -> RecipientList:
    """A new list, optionally with members; validation_error at the account's ceiling."""
    async with conn.transaction():
        if await lists_store.count_lists(conn, account_id=account_id) >= MAX_LISTS:
            raise too_many("recipient_lists", MAX_LISTS, "recipient lists")
        ids = await _owned_ids(conn, account_id, recipient_ids)
        list_id = new_id("lst")
        await lists_store.insert_list(conn, list_id=list_id, account_id=account_id, name=name)
        if ids:
            await lists_store.add_members(conn, list_id=list_id, recipient_ids=ids)
        row = await lists_store.get_list(conn, account_id=account_id, list_id=list_id)
    return _list(row)


async def get_list(db: Db, account_id: str, list_id: str) -> RecipientList | None:
    """One list of the account, or None."""
    row = await lists_store.get_list(db, account_id=account_id, list_id=list_id)
    return None if row is None else _list(row)


async def list_lists(db: Db, account_id: str, cursor: str, limit: int) -> list[RecipientList]:
    """Up to ``limit`` lists after ``cursor``, in id order."""
    return [
        _list(r) for r in await lists_store.list_lists(db, account_id=account_id, cursor=cursor, limit=limit)
    ]


async def rename_list(db: Db, account_id: str, list_id: str, name: str) -> RecipientList | None:
    """Give a list a new name; None when the account has no such list."""
    if not await lists_store.rename_list(db, account_id=account_id, list_id=list_id, name=name):
        return None
    return await get_list(db, account_id, list_id)


async def delete_list(db: Db, account_id: str, list_id: str) -> bool:
    """Remove a list (its recipients stay in the directory); False when there was none."""
    return await lists_store.delete_list(db, account_id=account_id, list_id=list_id)


async def add_members(
    conn: Conn, account_id: str, list_id: str, recipient_ids: list[str], phones: list[str]
) -> tuple[RecipientList, int] | None:
    """Add directory entries and numbers (E.164; new ones join the directory) to a list;
    ``(list, how many were not members yet)``, or None when there is no such list."""
    async with conn.transaction():
        if not await lists_store.lock_list(conn, account_id=account_id, list_id=list_id):
            return None
        ids = await _owned_ids(conn, account_id, recipient_ids)
        ids += await _ids_of_phones(conn, account_id, phones)
        added = await lists_store.add_members(conn, list_id=list_id, recipient_ids=list(dict.fromkeys(ids)))
        await lists_store.touch_list(conn, list_id=list_id)
        row = await lists_store.get_list(conn, account_id=account_id, list_id=list_id)
    return _list(row), added


async def remove_members(
    conn: Conn, account_id: str, list_id: str, recipient_ids: list[str], phones: list[str]
) -> tuple[RecipientList, int] | None:
    """Take recipients (by id or E.164 number) out of a list; they stay in the directory.
    Ids and numbers that are not members are ignored. ``(list, how many left)`` or None."""
    async with conn.transaction():
        if not await lists_store.lock_list(conn, account_id=account_id, list_id=list_id):
            return None
        ids = list(recipient_ids)
        if phones:
            ids += await store.ids_by_phones(conn, account_id=account_id, phones=phones)
        removed = await lists_store.remove_members(
            conn, list_id=list_id, recipient_ids=list(dict.fromkeys(ids))
        )
        await lists_store.touch_list(conn, list_id=list_id)
        row = await lists_store.get_list(conn, account_id=account_id, list_id=list_id)
    return _list(row), removed


async def list_members(db: Db, list_id: str, cursor: str, limit: int) -> list[Recipient]:
    """Up to ``limit`` members after ``cursor`` (recipient id order); the caller checked that
    the list is the account's."""
    rows = await lists_store.members(db, list_id=list_id, cursor=cursor, limit=limit)
    return [recipient_from_row(r) for r in rows]
