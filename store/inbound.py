"""Inbound SMS (``inbound_messages``): the SQL and the typed functions that run it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from store.database import Db
from store.rows import many

__all__ = ["InboundRow", "inbound_page", "insert_inbound", "latest_sent_to"]


class InboundRow(msgspec.Struct, frozen=True, kw_only=True):
    """One stored inbound SMS as the API lists it."""

    id: str
    device_id: str
    from_number: str
    body: str
    sim_slot: int | None
    received_at: datetime
    stored_at: datetime
    opt_action: Literal["opted_out", "opted_in"] | None
    in_reply_to: str | None


# NULL row back: a retry of one already stored.
_INSERT = """
INSERT INTO inbound_messages (id, account_id, device_id, relay_message_id, from_number, body, sim_slot,
                              received_at, opt_action, in_reply_to)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (device_id, relay_message_id) DO NOTHING
RETURNING id
"""
_REPLY_TO = """
SELECT id FROM messages WHERE account_id = $1 AND to_number = $2 ORDER BY id DESC LIMIT 1
"""
# $2 from ('' = any), $3 since (NULL = any), $4 cursor ('' = first)
_LIST = """
SELECT id, device_id, from_number, body, sim_slot, received_at, stored_at, opt_action, in_reply_to
FROM inbound_messages
WHERE account_id = $1 AND ($2 = '' OR from_number = $2) AND ($3::timestamptz IS NULL OR received_at >= $3)
  AND id > $4
ORDER BY id LIMIT $5
"""


async def latest_sent_to(db: Db, *, account_id: str, to_number: str) -> str | None:
    """The latest message the account sent to a number (what an inbound SMS from it replies to)."""
    message_id: str | None = await db.fetchval(_REPLY_TO, account_id, to_number)
    return message_id


async def insert_inbound(
    db: Db,
    *,
    inbound_id: str,
    account_id: str,
    device_id: str,
    relay_message_id: str,
    from_number: str,
    body: str,
    sim_slot: int | None,
    received_at: datetime,
    opt_action: Literal["opted_out", "opted_in"] | None,
    in_reply_to: str | None,
) -> bool:
    """Store one inbound SMS; False when the relay sent this ``(device, id)`` before (nothing changes)."""
    stored = await db.fetchval(
        _INSERT,
        inbound_id,
        account_id,
        device_id,
        relay_message_id,
        from_number,
        body,
        sim_slot,
        received_at,
        opt_action,
        in_reply_to,
    )
    return stored is not None


async def inbound_page(
    db: Db, *, account_id: str, sender: str, since: datetime | None, after: str, limit: int
) -> list[InboundRow]:
    """At most ``limit`` of the account's inbound SMS after id ``after`` ('' = the first), from
    ``sender`` ('' = anyone), received at ``since`` or later (None = any time)."""
    return many(await db.fetch(_LIST, account_id, sender, since, after, limit), InboundRow)
