"""The recipients directory: create, read, change, delete, search, and the opt-out check the
send path uses. Every function is scoped to one account: another account's id is not found."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.recipients.model import MAX_RECIPIENTS, Recipient, recipient_from_row
from gateway.recipients.search import name_key, plan_search, search_grams
from store import recipients as store
from store.database import Conn, Db

__all__ = [
    "Db",
    "create_recipient",
    "delete_recipient",
    "get_recipient",
    "is_opted_out",
    "opted_out_error",
    "search_recipients",
    "set_opt_out",
    "update_recipient",
]


def conflict(existing_id: str) -> ApiError:
    """The 409 for a number the account's directory already holds."""
    return ApiError(
        "conflict",
        "this number is already in the directory",
        {"reason": "duplicate_phone", "recipient_id": existing_id},
    )


async def create_recipient(
    db: Db,
    account_id: str,
    *,
    name: str,
    phone: str,
    tags: list[str],
    locale: str | None,
    metadata: dict[str, Any],
    opted_out: bool = False,
) -> Recipient:
    """Add one recipient (``phone`` already E.164); 409 ``conflict`` naming the existing id
    when the number is in the directory, ``validation_error`` at the account's ceiling."""
    if await store.count(db, account_id=account_id) >= MAX_RECIPIENTS:
        raise too_many_recipients()
    key = name_key(name)
    row = await store.insert(
        db,
        id=new_id("rcp"),
        account_id=account_id,
        name=name,
        phone=phone,
        tags=list(dict.fromkeys(tags)),
        locale=locale,
        metadata=metadata,
        opted_out=opted_out,
        name_key=key,
        search_grams=search_grams(key, phone),
    )
    if row is None:
        raise conflict(await store.id_by_phone(db, account_id=account_id, phone=phone) or "")
    return recipient_from_row(row)


def too_many_recipients() -> ApiError:
    """The refusal at the account's directory ceiling."""
    return ApiError(
        "validation_error",
        f"this account's directory holds {MAX_RECIPIENTS} recipients, the most it may",
        {"reason": "recipients", "limit": MAX_RECIPIENTS},
    )


async def get_recipient(db: Db, account_id: str, recipient_id: str) -> Recipient | None:
    """One recipient of the account, or None."""
    row = await store.get(db, account_id=account_id, recipient_id=recipient_id)
    return None if row is None else recipient_from_row(row)


async def update_recipient(
    conn: Conn, account_id: str, recipient_id: str, changes: dict[str, Any]
) -> Recipient | None:
    """Apply ``changes`` (any of name, phone (E.164), tags, locale, metadata, opted_out) to one
    recipient; None when the account has no such recipient; 409 when the new number is taken."""
    async with conn.transaction():
        current = await store.get_for_update(conn, account_id=account_id, recipient_id=recipient_id)
        if current is None:
            return None
        name = changes.get("name", current.name)
        phone = changes.get("phone", current.phone)
        key = name_key(name)
        if phone != current.phone:
            existing = await store.id_by_phone(conn, account_id=account_id, phone=phone)
            if existing is not None:
                raise conflict(existing)
        try:
            updated = await store.set_all(
                conn,
                account_id=account_id,
                recipient_id=recipient_id,
                name=name,
                phone=phone,
                tags=list(dict.fromkeys(changes.get("tags", current.tags))),
                locale=changes.get("locale", current.locale),
                metadata=changes.get("metadata", current.metadata),
                opted_out=changes.get("opted_out", current.opted_out),
                name_key=key,
                search_grams=search_grams(key, phone),
            )
        except asyncpg.UniqueViolationError:  # taken by a concurrent request since the check
            raise conflict(await store.id_by_phone(conn, account_id=account_id, phone=phone) or "") from None
        assert updated is not None  # the row is locked
        return recipient_from_row(updated)


async def delete_recipient(db: Db, account_id: str, recipient_id: str) -> bool:
    """Remove a recipient (and its list memberships); False when there was none."""
    return await store.delete(db, account_id=account_id, recipient_id=recipient_id)


async def search_recipients(
    db: Db,
    account_id: str,
    *,
    query: str,
    tag: str | None,
    opted_out: bool | None,
    cursor: str,
    limit: int,
) -> list[Recipient]:
    """Up to ``limit`` recipients after ``cursor`` in id order matching every filter given
    (see :mod:`gateway.recipients.search` for what ``query`` matches)."""
    plan = plan_search(query) if query else None
    rows = await store.search(
        db,
        account_id=account_id,
        cursor=cursor,
        limit=limit,
        grams=plan.grams if plan is not None else None,
        name_like=plan.name_like if plan is not None else None,
        phone_like=plan.phone_like if plan is not None else None,
        tag=tag,
        opted_out=opted_out,
    )
    return [recipient_from_row(r) for r in rows]


async def is_opted_out(db: Db, account_id: str, e164: str) -> bool:
    """Whether the account's directory marks this number (E.164) as opted out."""
    return await store.is_opted_out(db, account_id=account_id, phone=e164)


def opted_out_error() -> ApiError:
    """The refusal of a non-transactional send to a number the directory marks opted out (the
    send path reads the flag: :class:`gateway.sending.caps.SendCaps`)."""
    return ApiError(
        "validation_error",
        'this number opted out of messages from this account (send with "transactional": true '
        "for login codes and receipts)",
        {"reason": "opted_out", "fields": {"to": "opted out"}},
    )


async def set_opt_out(db: Db, account_id: str, e164: str, opted_out: bool) -> Recipient:
    """Mark a number opted out (or back in); a number not in the directory is added with an
    empty name so that the opt-out holds."""
    row = await store.set_opt_out(
        db,
        new_id=new_id("rcp"),
        account_id=account_id,
        phone=e164,
        opted_out=opted_out,
        search_grams=search_grams("", e164),
    )
    return recipient_from_row(row)
