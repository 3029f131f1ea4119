"""Batches (list sends): queueing a whole list as messages, progress, cancel and completion —
the SQL and the typed functions that run it.

``metadata`` (jsonb) is written as JSON text (``::text::jsonb``), encoded here, so these
functions work the same with or without a jsonb codec on the connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from store.database import Conn, Db

__all__ = [
    "BatchRow",
    "CompletedBatch",
    "OpenBatch",
    "SkippedRow",
    "complete",
    "drop_items",
    "get",
    "insert",
    "list_phones",
    "lock_open",
    "mark_cancelled",
    "open_batches",
    "queue_items",
    "queued_ids",
    "set_totals",
    "skipped",
    "skipped_count",
    "status_counts",
    "unknown_keys",
]

_encode = msgspec.json.Encoder().encode


class BatchRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``batches``."""

    id: str
    account_id: str
    list_id: str
    total: int
    skipped: int
    created_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None


class SkippedRow(msgspec.Struct, frozen=True, kw_only=True):
    """A member a list send left out, and why (``opted_out`` or ``invalid_number``)."""

    recipient_id: str
    phone: str
    reason: Literal["opted_out", "invalid_number"]


class OpenBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch not complete yet, for the dispatch loop's feed."""

    id: str
    account_id: str
    not_before: datetime | None


class CompletedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch just completed: what its ``batch.completed`` event says."""

    id: str
    account_id: str
    list_id: str
    total: int
    created_at: datetime
    completed_at: datetime


# --- queueing a list --------------------------------------------------------------------------

# The members' numbers a policy check needs ($1 list, $2 account).
_LIST_PHONES = """
SELECT r.phone FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND NOT r.opted_out
"""
# Placeholders ($3) that no member's metadata has ($1 list, $2 account).
_UNKNOWN_KEYS = """
SELECT k FROM unnest($3::text[]) AS k
WHERE NOT EXISTS (
    SELECT 1 FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
    WHERE m.list_id = $1 AND r.account_id = $2 AND r.metadata ? k
)
"""
_INSERT = """
INSERT INTO batches (id, account_id, list_id, total, skipped, created_at, not_before)
VALUES ($1, $2, $3, 0, 0, $4, $5)
"""
# One message per member that is neither opted out nor in $7 (numbers to leave out), in member
# (recipient id) order, with one statement. $1 id prefix ('req_' + 19 ULID characters;
# a 7-digit sequence completes each id), $2 account, $3 list, $4 literal parts of the text and
# $5 the placeholder after each ('' after the last), $6 batch id, $7 refused numbers, $8 priority,
# $9 pinned relay, $10 metadata JSON, $11 expires_at, $12 queued_at. Encoding and segments:
# $13/$14 when the text has no placeholder (the same for everyone), else computed here as
# gateway.sending.sms_text does: $15 matches a GSM-7 text, $16 holds the characters that take
# two septets (the extension table). $17 send_at: the items are 'scheduled' until then (NULL:
# queued now). Returns how many were written.
#
# {body} is the text rendered from $4 and $5 as one concatenation (see _render), so nothing
# runs a subquery per member; each "OFFSET 0" keeps its subquery from being flattened into the
# one above, so the body, the GSM-7 test and the septet count are each computed once per row,
# streaming (no materialised CTE spilling to disk). Members come in recipient id order from the
# members' primary key, which is the order of the ids given to the items.
_QUEUE_ITEMS = r"""
WITH inserted AS (
    INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                          pinned_device_id, metadata, expires_at, queued_at, batch_id,
                          status, send_at, not_before, hold_reason)
    SELECT $1 || lpad(n::text, 7, '0'), $2, 'list', phone, body,
           coalesce($13::text, CASE WHEN gsm THEN 'GSM-7' ELSE 'UCS-2' END),
           CASE WHEN $13::text IS NOT NULL THEN $14::int
                WHEN gsm THEN CASE WHEN units <= 160 THEN 1 ELSE ceil(units / 153.0)::int END
                ELSE CASE WHEN units <= 70 THEN 1 ELSE ceil(units / 67.0)::int END END,
           $8, $9, $10::text::jsonb, $11, $12, $6,
           CASE WHEN $17::timestamptz IS NULL THEN 'queued' ELSE 'scheduled' END, $17, $17,
           CASE WHEN $17::timestamptz IS NULL THEN NULL ELSE 'send_at' END
    FROM (
        SELECT n, phone, body, gsm,
               CASE WHEN $13::text IS NOT NULL THEN NULL
                    WHEN gsm THEN 2 * length(body) - length(translate(body, $16, ''))
                    ELSE length(body) + length(regexp_replace(body, '[^𐀀-􏿿]+', '', 'g'))
               END AS units
        FROM (
            SELECT n, phone, body, CASE WHEN $13::text IS NOT NULL THEN NULL ELSE body ~ $15 END AS gsm
            FROM (
                SELECT r.phone, {body} AS body, row_number() OVER (ORDER BY m.recipient_id) AS n
                FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
                WHERE m.list_id = $3 AND r.account_id = $2 AND NOT r.opted_out
                  AND NOT (r.phone = ANY ($7::text[]))
                  AND cardinality($5::text[]) = cardinality($4::text[])  -- (types $5 when unused)
                OFFSET 0
            ) rendered
            OFFSET 0
        ) measured
        OFFSET 0
    ) counted
    RETURNING 1
)
SELECT count(*) FROM inserted
"""
# Sorting 100,000 members by id, and hashing them, fits in memory with this.
_QUEUE_WORK_MEM = "SET LOCAL work_mem = '64MB'"


def _render(keys: list[str]) -> str:
    """The SQL expression of a list item's text: ``$4[1] || value of $5[1] || $4[2] || ...``;
    ``name`` and ``phone`` are the recipient's own, any other key is read from its metadata
    (``''`` when it has none). Only the shape comes from ``keys``: the literals and the
    metadata keys themselves are parameters."""
    parts = []
    for i, key in enumerate(keys, start=1):
        parts.append(f"($4::text[])[{i}]")
        if key == "name":
            parts.append("r.name")
        elif key == "phone":
            parts.append("r.phone")
        elif key:
            parts.append(f"coalesce(r.metadata ->> ($5::text[])[{i}], '')")
    return " || ".join(parts)


# Items of numbers the policy refuses, found while the items were written; returns how many.
_DROP_ITEMS = """
WITH dropped AS (
    DELETE FROM messages WHERE account_id = $2 AND to_number = ANY ($3::text[]) AND batch_id = $1 RETURNING 1
)
SELECT count(*) FROM dropped
"""
_SET_TOTALS = "UPDATE batches SET total = $2, skipped = $3 WHERE id = $1"
# Members not queued and why ($1 list, $2 account, $3 refused numbers, $4 at most this many).
_SKIPPED = """
SELECT r.id, r.phone, CASE WHEN r.opted_out THEN 'opted_out' ELSE 'invalid_number' END AS reason
FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND (r.opted_out OR r.phone = ANY ($3::text[]))
ORDER BY r.id LIMIT $4
"""
_SKIPPED_COUNT = """
SELECT count(*) FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND (r.opted_out OR r.phone = ANY ($3::text[]))
"""


async def list_phones(db: Db, *, account_id: str, list_id: str) -> list[str]:
    """The numbers of the list's members that did not opt out."""
    return [r[0] for r in await db.fetch(_LIST_PHONES, list_id, account_id)]


async def unknown_keys(conn: Conn, *, account_id: str, list_id: str, keys: list[str]) -> list[str]:
    """Those of ``keys`` that no member's metadata has."""
    return [r[0] for r in await conn.fetch(_UNKNOWN_KEYS, list_id, account_id, keys)]


async def insert(
    conn: Conn,
    *,
    batch_id: str,
    account_id: str,
    list_id: str,
    created_at: datetime,
    not_before: datetime | None,
) -> None:
    """A new batch with no items counted yet."""
    await conn.execute(_INSERT, batch_id, account_id, list_id, created_at, not_before)


async def queue_items(
    conn: Conn,
    *,
    id_prefix: str,
    account_id: str,
    list_id: str,
    literals: list[str],
    keys: list[str],
    batch_id: str,
    refused: list[str],
    priority: int,
    device_id: str | None,
    metadata: dict[str, Any] | None,
    expires_at: datetime,
    queued_at: datetime,
    encoding: str | None,
    segments: int | None,
    gsm_pattern: str,
    extended_characters: str,
    send_at: datetime | None,
) -> int:
    """Write one message per member that is neither opted out nor in ``refused``, its text
    ``literals`` with each member's ``keys`` in between; how many were written. ``encoding``
    and ``segments``: the same for everyone (a text without placeholders), or None to compute
    them per message (``gsm_pattern`` matches a GSM-7 text, ``extended_characters`` take two
    septets). ``send_at``: the items are ``scheduled`` until then. Runs in the caller's
    transaction (its ``work_mem`` is raised until that ends)."""
    await conn.execute(_QUEUE_WORK_MEM)
    written = await conn.fetchval(
        _QUEUE_ITEMS.replace("{body}", _render(keys)),
        id_prefix,
        account_id,
        list_id,
        literals,
        keys,
        batch_id,
        refused,
        priority,
        device_id,
        _encode(metadata).decode() if metadata is not None else None,
        expires_at,
        queued_at,
        encoding,
        segments,
        gsm_pattern,
        extended_characters,
        send_at,
    )
    return int(written)


async def drop_items(conn: Conn, *, account_id: str, batch_id: str, phones: list[str]) -> int:
    """Remove the batch's items to these numbers; how many."""
    return int(await conn.fetchval(_DROP_ITEMS, batch_id, account_id, phones))


async def set_totals(conn: Conn, *, batch_id: str, total: int, skipped: int) -> None:
    """Record how many items the batch has and how many members it skipped."""
    await conn.execute(_SET_TOTALS, batch_id, total, skipped)


async def skipped(
    conn: Conn, *, account_id: str, list_id: str, refused: list[str], limit: int
) -> list[SkippedRow]:
    """The first ``limit`` members (recipient id order) opted out or with a number in
    ``refused``."""
    rows = await conn.fetch(_SKIPPED, list_id, account_id, refused, limit)
    return [SkippedRow(recipient_id=r[0], phone=r[1], reason=r[2]) for r in rows]


async def skipped_count(conn: Conn, *, account_id: str, list_id: str, refused: list[str]) -> int:
    """How many members are opted out or have a number in ``refused``."""
    return int(await conn.fetchval(_SKIPPED_COUNT, list_id, account_id, refused))


# --- progress, cancel ---------------------------------------------------------------------------

_GET = """
SELECT id, account_id, list_id, total, skipped, created_at, completed_at, cancelled_at FROM batches
WHERE id = $1 AND account_id = $2
"""
_STATUS_COUNTS = "SELECT status, count(*)::int AS n FROM messages WHERE batch_id = $1 GROUP BY status"
_QUEUED_IDS = """
SELECT id FROM messages WHERE batch_id = $1 AND status IN ('scheduled', 'queued') ORDER BY id
"""
_MARK_CANCELLED = "UPDATE batches SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = $1"


async def get(db: Db, *, account_id: str, batch_id: str) -> BatchRow | None:
    """One batch of the account."""
    r = await db.fetchrow(_GET, batch_id, account_id)
    if r is None:
        return None
    return BatchRow(
        id=r[0],
        account_id=r[1],
        list_id=r[2],
        total=r[3],
        skipped=r[4],
        created_at=r[5],
        completed_at=r[6],
        cancelled_at=r[7],
    )


async def status_counts(db: Db, *, batch_id: str) -> dict[str, int]:
    """The batch's items per status (statuses without items absent)."""
    return {r[0]: r[1] for r in await db.fetch(_STATUS_COUNTS, batch_id)}


async def queued_ids(db: Db, *, batch_id: str) -> list[str]:
    """The batch's items still scheduled or queued, in id order."""
    return [r[0] for r in await db.fetch(_QUEUED_IDS, batch_id)]


async def mark_cancelled(db: Db, *, batch_id: str) -> None:
    """Record that the batch was cancelled (the first time only)."""
    await db.execute(_MARK_CANCELLED, batch_id)


# --- completion ---------------------------------------------------------------------------------

_OPEN = "SELECT id, account_id, not_before FROM batches WHERE completed_at IS NULL ORDER BY id"
# Locked, so that two transactions that each finish some of a batch's last items see each
# other's commit before deciding.
_LOCK_OPEN = """
SELECT id FROM batches WHERE id = ANY ($1::text[]) AND completed_at IS NULL ORDER BY id FOR UPDATE
"""
_COMPLETE = """
UPDATE batches b SET completed_at = now()
WHERE b.id = ANY ($1::text[]) AND b.completed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.batch_id = b.id
                  AND m.status IN ('scheduled', 'queued', 'dispatched'))
RETURNING b.id, b.account_id, b.list_id, b.total, b.created_at, b.completed_at
"""


async def open_batches(db: Db) -> list[OpenBatch]:
    """Every batch not complete, in id order."""
    return [OpenBatch(id=r[0], account_id=r[1], not_before=r[2]) for r in await db.fetch(_OPEN)]


async def lock_open(conn: Conn, *, batch_ids: list[str]) -> list[str]:
    """Those of ``batch_ids`` not complete, locked until the caller's transaction ends."""
    return [r[0] for r in await conn.fetch(_LOCK_OPEN, batch_ids)]


async def complete(conn: Conn, *, batch_ids: list[str]) -> list[CompletedBatch]:
    """Complete those of ``batch_ids`` with no item left scheduled, queued or dispatched."""
    rows = await conn.fetch(_COMPLETE, batch_ids)
    return [
        CompletedBatch(id=r[0], account_id=r[1], list_id=r[2], total=r[3], created_at=r[4], completed_at=r[5])
        for r in rows
    ]
