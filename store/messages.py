"""Messages: the SQL and the typed functions that run it (state transitions are in
:mod:`store.transitions`).

Accepting (one statement for a batch of new messages), the reads of the messages and queue
APIs, restart recovery, the list feed (a batch's queued items in chunks), the counts behind the
sending caps and the queue pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from store.database import Db
from store.rows import many, one

__all__ = [
    "AttemptRow",
    "MessageRow",
    "NewMessageRow",
    "QueueRecentRow",
    "QueuedRow",
    "UnfinishedRow",
    "account_sends_since",
    "attempts_of",
    "batch_items",
    "batches_of",
    "insert_messages",
    "list_messages",
    "message",
    "queue_paused_accounts",
    "queue_recent",
    "release_batch",
    "set_queue_paused",
    "unfinished",
]


class NewMessageRow(msgspec.Struct, frozen=True, array_like=True):
    """A message to insert, its fields in the order of ``_INSERT_MANY``'s columns."""

    id: str
    account_id: str
    kind: str
    to_number: str
    body: str
    encoding: str
    segments: int
    priority: int
    pinned_device_id: str | None
    sim_slot: int | None
    metadata: dict[str, Any] | None
    expires_at: datetime
    queued_at: datetime
    sealed_body: bytes | None
    status: str
    send_at: datetime | None
    not_before: datetime | None
    hold_reason: str | None


class MessageRow(msgspec.Struct, frozen=True):
    """One message as the messages API shows it (with its device's name)."""

    id: str
    status: str
    to_number: str
    device_id: str | None
    device_name: str | None
    attempts: int
    failure_reason: str | None
    failure_reason_detail: str | None
    kind: str
    priority: int
    encoding: str
    segments: int
    metadata: dict[str, Any] | None
    queued_at: datetime
    dispatched_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    expires_at: datetime
    late_report_status: str | None
    late_report_at: datetime | None
    send_at: datetime | None
    not_before: datetime | None
    hold_reason: str | None
    cancel_requested_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class AttemptRow(msgspec.Struct, frozen=True):
    """One dispatch of a message (``message_attempts``, with the device's name)."""

    attempt: int
    device_id: str
    device_name: str | None
    dispatched_at: datetime
    acked_at: datetime | None
    outcome: str | None
    reason: str | None
    finished_at: datetime | None
    late_report_status: str | None
    late_report_at: datetime | None


class QueueRecentRow(msgspec.Struct, frozen=True):
    """An account's last minute: messages accepted, scheduled now, and reports stored."""

    accepted: int
    scheduled: int
    sent: int
    delivered: int
    failed: int


class QueuedRow(msgspec.Struct, frozen=True):
    """A stored message as the scheduler takes it in: a queued list item as the feed reads it,
    and the fields every row of a message on its way to a relay starts with."""

    id: str
    account_id: str
    to_number: str
    body: str
    priority: int
    pinned_device_id: str | None
    sim_slot: int | None
    expires_at: datetime


class UnfinishedRow(QueuedRow, frozen=True):
    """A ``queued`` or ``dispatched`` message as restart recovery reads it."""

    sealed_body: bytes | None
    attempts: int
    device_id: str | None
    acked_at: datetime | None
    cancel_requested_at: datetime | None
    cancel_reason: str | None
    batch_id: str | None
    failures: int
    """Attempts that ended ``failed`` (what ``max_attempts`` counts)."""


# --- accepting ---------------------------------------------------------------------------------
# Group-committed accept: one row per array element.
_INSERT_MANY = """
INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                      pinned_device_id, sim_slot, metadata, expires_at, queued_at, sealed_body,
                      status, send_at, not_before, hold_reason)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                     $8::smallint[], $9::text[], $10::smallint[], $11::jsonb[], $12::timestamptz[],
                     $13::timestamptz[], $14::bytea[], $15::text[], $16::timestamptz[],
                     $17::timestamptz[], $18::text[])
"""


async def insert_messages(conn: Db, rows: Sequence[NewMessageRow]) -> None:
    """Insert new messages with one statement."""
    columns = zip(*(msgspec.structs.astuple(r) for r in rows), strict=True)
    await conn.execute(_INSERT_MANY, *[list(c) for c in columns])


# --- reads of the messages and queue APIs ------------------------------------------------------
_MESSAGE = """
SELECT m.*, d.name AS device_name FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.id = $1 AND m.account_id = $2
"""
_ATTEMPTS = """
SELECT a.*, d.name AS device_name FROM message_attempts a LEFT JOIN devices d ON d.id = a.device_id
WHERE a.message_id = $1 ORDER BY a.attempt
"""
# $1 account, $2 cursor ('' first page), $3 limit, $4 status or NULL, $5 since or NULL, $6 to or NULL,
# $7 batch id or NULL
_LIST = """
SELECT m.*, d.name AS device_name FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.account_id = $1 AND ($2 = '' OR m.id < $2)
  AND ($4::text IS NULL OR m.status = $4) AND ($5::timestamptz IS NULL OR m.queued_at >= $5)
  AND ($6::text IS NULL OR m.to_number = $6) AND ($7::text IS NULL OR m.batch_id = $7)
ORDER BY m.id DESC LIMIT $3
"""
# $2 messages accepted since (an id floor), $3 events since (an id floor).
_QUEUE_RECENT = """
SELECT (SELECT count(*) FROM messages WHERE account_id = $1 AND id >= $2) AS accepted,
       (SELECT count(*) FROM messages WHERE account_id = $1 AND status = 'scheduled') AS scheduled,
       count(*) FILTER (WHERE type = 'message.sent') AS sent,
       count(*) FILTER (WHERE type = 'message.delivered') AS delivered,
       count(*) FILTER (WHERE type = 'message.failed') AS failed
FROM events WHERE account_id = $1 AND id >= $3
"""


async def message(conn: Db, *, account_id: str, message_id: str) -> MessageRow | None:
    """One message of the account."""
    return one(await conn.fetchrow(_MESSAGE, message_id, account_id), MessageRow)


async def attempts_of(conn: Db, *, message_id: str) -> list[AttemptRow]:
    """Every dispatch of a message, first first."""
    return many(await conn.fetch(_ATTEMPTS, message_id), AttemptRow)


async def list_messages(
    conn: Db,
    *,
    account_id: str,
    before: str,
    limit: int,
    status: str | None,
    since: datetime | None,
    to: str | None,
    batch_id: str | None,
) -> list[MessageRow]:
    """The account's messages older than the cursor ``before`` ('' = newest), newest first."""
    rows = await conn.fetch(_LIST, account_id, before, limit, status, since, to, batch_id)
    return many(rows, MessageRow)


async def queue_recent(
    conn: Db, *, account_id: str, accepted_since: str, events_since: str
) -> QueueRecentRow:
    """The account's last minute, from id floors of messages and of events."""
    row = one(await conn.fetchrow(_QUEUE_RECENT, account_id, accepted_since, events_since), QueueRecentRow)
    assert row is not None  # an aggregate always has its row
    return row


# --- restart recovery ----------------------------------------------------------------------------
# Unfinished work for restart recovery.
_UNFINISHED = """
SELECT id, account_id, to_number, body, sealed_body, priority, pinned_device_id, sim_slot, attempts,
       expires_at, device_id, acked_at, cancel_requested_at, cancel_reason, batch_id,
       (SELECT count(*) FROM message_attempts a WHERE a.message_id = messages.id AND a.outcome = 'failed')::int
           AS failures
FROM messages WHERE status IN ('queued', 'dispatched') AND NOT (batch_id IS NOT NULL AND status = 'queued')
ORDER BY id
"""


async def unfinished(conn: Db) -> list[UnfinishedRow]:
    """Every ``queued`` or ``dispatched`` message but queued list items, in id order."""
    return many(await conn.fetch(_UNFINISHED), UnfinishedRow)


# --- the list feed -----------------------------------------------------------------------------
# The next still queued items of a batch after $2 (id order), at most $3, with what the relay needs.
_BATCH_ITEMS = """
SELECT id, account_id, to_number, body, priority, pinned_device_id, sim_slot, expires_at
FROM messages WHERE batch_id = $1 AND status = 'queued' AND id > $2
ORDER BY id LIMIT $3
"""
# A scheduled batch's time came ($1 batch): its items scheduled -> queued (the feed reads them next).
_RELEASE_BATCH = """
UPDATE messages SET status = 'queued', hold_reason = NULL WHERE batch_id = $1 AND status = 'scheduled'
"""
_BATCHES_OF = """
SELECT DISTINCT batch_id FROM messages WHERE id = ANY ($1::text[]) AND batch_id IS NOT NULL
"""


async def batch_items(conn: Db, *, batch_id: str, after: str, limit: int) -> list[QueuedRow]:
    """Up to ``limit`` queued items of the batch after the id ``after``, in id order."""
    return many(await conn.fetch(_BATCH_ITEMS, batch_id, after, limit), QueuedRow)


async def release_batch(conn: Db, *, batch_id: str) -> None:
    """A scheduled batch's items: scheduled → queued."""
    await conn.execute(_RELEASE_BATCH, batch_id)


async def batches_of(conn: Db, message_ids: Sequence[str]) -> list[str]:
    """The batches these messages belong to (list items only)."""
    return [r[0] for r in await conn.fetch(_BATCHES_OF, list(message_ids))]


# --- sending caps and the queue pause -----------------------------------------------------------
# Messages an account accepted since $2 (a day start) and $3 (a month start), as id floors.
_ACCOUNT_SENDS_SINCE = """
SELECT count(*) FILTER (WHERE id >= $2) AS day, count(*) AS month
FROM messages WHERE account_id = $1 AND id >= $3
"""
# Per (account, number, id floor): the ids of the account's messages to that number since the
# floor, oldest first (the per-recipient caps of many sends, read with one statement).
# Queue pause, durable per account ($2 true = pause, false = resume).
_SET_QUEUE_PAUSED = """
UPDATE accounts SET queue_paused_at = CASE WHEN $2 THEN coalesce(queue_paused_at, now()) END
WHERE id = $1 RETURNING queue_paused_at
"""
_QUEUE_PAUSED_ACCOUNTS = "SELECT id FROM accounts WHERE queue_paused_at IS NOT NULL"


async def account_sends_since(
    conn: Db, *, account_id: str, day_floor: str, month_floor: str
) -> tuple[int, int]:
    """Messages the account accepted since two id floors: ``(day, month)``."""
    row = await conn.fetchrow(_ACCOUNT_SENDS_SINCE, account_id, day_floor, month_floor)
    assert row is not None
    return int(row["day"]), int(row["month"])


async def set_queue_paused(conn: Db, *, account_id: str, paused: bool) -> None:
    """Pause (keeping the first pause's time) or resume the account's queue."""
    await conn.fetchval(_SET_QUEUE_PAUSED, account_id, paused)


async def queue_paused_accounts(conn: Db) -> list[str]:
    """Accounts whose queue is paused."""
    return [r[0] for r in await conn.fetch(_QUEUE_PAUSED_ACCOUNTS)]
