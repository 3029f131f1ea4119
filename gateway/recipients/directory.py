"""The recipients directory: create, read, change, delete, search, and the opt-out check the
send path uses. Every function is scoped to one account: another account's id is not found."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg

from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.recipients.model import MAX_RECIPIENTS, Recipient, recipient_from_row
from gateway.recipients.search import name_key, plan_search, search_grams
from store import queries as q
from store.database import Conn

__all__ = [
    "Db",
    "check_not_opted_out",
    "create_recipient",
    "delete_recipient",
    "get_recipient",
    "is_opted_out",
    "search_recipients",
    "set_opt_out",
    "update_recipient",
]

Db: TypeAlias = "Conn | asyncpg.Pool[Any]"
"""A connection or the pool: what the directory's functions run their statements on."""


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
    if await db.fetchval(q.RECIPIENT_COUNT, account_id) >= MAX_RECIPIENTS:
        raise too_many_recipients()
    key = name_key(name)
    row = await db.fetchrow(
        q.RECIPIENT_INSERT,
        new_id("rcp"),
        account_id,
        name,
        phone,
        list(dict.fromkeys(tags)),
        locale,
        metadata,
        opted_out,
        key,
        search_grams(key, phone),
    )
    if row is None:
        existing = await db.fetchval(q.RECIPIENT_ID_BY_PHONE, account_id, phone)
        raise conflict(existing or "")
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
    row = await db.fetchrow(q.RECIPIENT_GET, recipient_id, account_id)
    return None if row is None else recipient_from_row(row)


async def update_recipient(
    conn: Conn, account_id: str, recipient_id: str, changes: dict[str, Any]
) -> Recipient | None:
    """Apply ``changes`` (any of name, phone (E.164), tags, locale, metadata, opted_out) to one
    recipient; None when the account has no such recipient; 409 when the new number is taken."""
    async with conn.transaction():
        row = await conn.fetchrow(q.RECIPIENT_GET_FOR_UPDATE, recipient_id, account_id)
        if row is None:
            return None
        current = recipient_from_row(row)
        name = changes.get("name", current.name)
        phone = changes.get("phone", current.phone)
        key = name_key(name)
        if phone != current.phone:
            existing = await conn.fetchval(q.RECIPIENT_ID_BY_PHONE, account_id, phone)
            if existing is not None:
                raise conflict(existing)
        try:
            updated = await conn.fetchrow(
                q.RECIPIENT_SET,
                recipient_id,
                account_id,
                name,
                phone,
                list(dict.fromkeys(changes.get("tags", current.tags))),
                changes.get("locale", current.locale),
                changes.get("metadata", current.metadata),
                changes.get("opted_out", current.opted_out),
                key,
                search_grams(key, phone),
            )
        except asyncpg.UniqueViolationError:  # taken by a concurrent request since the check
            raise conflict(await conn.fetchval(q.RECIPIENT_ID_BY_PHONE, account_id, phone) or "") from None
        return recipient_from_row(updated)


async def delete_recipient(db: Db, account_id: str, recipient_id: str) -> bool:
    """Remove a recipient (and its list memberships); False when there was none."""
    return await db.fetchval(q.RECIPIENT_DELETE, recipient_id, account_id) is not None


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
    args: list[Any] = [account_id, cursor, limit]
    if plan is not None:
        args += [a for a in (plan.grams, plan.name_like, plan.phone_like) if a is not None]
    if tag is not None:
        args.append(tag)
    if opted_out is not None:
        args.append(opted_out)
    sql = q.recipient_search(
        grams=plan is not None and plan.grams is not None,
        name_like=plan is not None and plan.name_like is not None,
        phone_like=plan is not None and plan.phone_like is not None,
        tag=tag is not None,
        opted_out=opted_out is not None,
    )
    async with _connection(db) as conn, conn.transaction():
        await conn.execute(q.RECIPIENT_SEARCH_CUSTOM_PLAN)
        rows = await conn.fetch(sql, *args)
    return [recipient_from_row(r) for r in rows]


@contextlib.asynccontextmanager
async def _connection(db: Db) -> AsyncIterator[Conn]:
    """A connection: ``db`` itself, or one from it when it is the pool."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def is_opted_out(db: Db, account_id: str, e164: str) -> bool:
    """Whether the account's directory marks this number (E.164) as opted out."""
    return bool(await db.fetchval(q.RECIPIENT_OPTED_OUT, account_id, e164))


async def check_not_opted_out(db: Db, account_id: str, e164: str, *, transactional: bool) -> None:
    """The send path's check: ``validation_error`` with reason ``opted_out`` for an opted-out
    number, unless the message is transactional (login codes, receipts)."""
    if not transactional and await is_opted_out(db, account_id, e164):
        raise ApiError(
            "validation_error",
            'this number opted out of messages from this account (send with "transactional": true '
            "for login codes and receipts)",
            {"reason": "opted_out", "fields": {"to": "opted out"}},
        )


async def set_opt_out(db: Db, account_id: str, e164: str, opted_out: bool) -> Recipient:
    """Mark a number opted out (or back in); a number not in the directory is added with an
    empty name so that the opt-out holds."""
    row = await db.fetchrow(
        q.RECIPIENT_SET_OPT_OUT, new_id("rcp"), account_id, e164, opted_out, search_grams("", e164)
    )
    return recipient_from_row(row)
