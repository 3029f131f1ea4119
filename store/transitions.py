"""Message state transitions on the send path: the SQL and the typed functions that run it.

Every transition takes arrays of equal length and runs one statement per kind and batch: status
only moves forward, and the device guard stops a relay from reporting on a message it does not
hold. Also the outbox payload of ``message.*`` events, relay cancels and scheduled releases.
Rows come back as the Structs below; the transition functions, on the hot path, build theirs
positionally.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from store.database import Conn, Db
from store.messages import QueuedRow
from store.rows import many

__all__ = [
    "EventDataRow",
    "ReportStored",
    "ScheduledRow",
    "Stored",
    "event_data",
    "finish_attempts",
    "mark_acked",
    "mark_cancelled",
    "mark_delivered",
    "mark_dispatched",
    "mark_failed",
    "mark_requeued",
    "mark_sent",
    "record_late_reports",
    "release_scheduled",
    "request_cancel",
    "scheduled_due",
]


class ScheduledRow(QueuedRow, frozen=True):
    """A ``scheduled`` message due by the look-ahead horizon."""

    sealed_body: bytes | None
    not_before: datetime


class Stored(msgspec.Struct, frozen=True):
    """A message a transition changed, and the time the change was stored with."""

    id: str
    at: datetime


class ReportStored(msgspec.Struct, frozen=True):
    """A ``sent`` / ``delivered`` report stored: the time, and the seconds of the leg it ended
    (ack → sent, sent → delivered; None when the start is unknown)."""

    id: str
    at: datetime
    leg: float | None


class EventDataRow(msgspec.Struct, frozen=True):
    """What a ``message.*`` event says of its message."""

    id: str
    account_id: str
    status: str
    to_number: str
    device_id: str | None
    device_name: str | None
    attempts: int
    failure_reason: str | None
    failure_reason_detail: str | None
    metadata: Any
    """The message's metadata (decoded by the jsonb codec)."""
    kind: str
    late_report_status: str | None
    late_report_at: datetime | None
    cancel_reason: str | None


# --- transitions -------------------------------------------------------------------------------
def _status_in(*statuses: str) -> str:
    """The guard ``status IN (…)`` written as a CASE, which the planner cannot match to the partial
    indexes on ``status`` (``messages_unfinished_idx``, ``messages_scheduled_idx``), so these
    statements always look each id up in the primary key. Right after a list of 100,000 is queued,
    and until autovacuum analyses the table, the statistics say almost nothing is queued; with a
    plain ``IN`` the planner then read the whole unfinished index for every batch (about 100,000
    entries, 70-500 ms a statement, measured in S6) instead of probing five ids."""
    whens = " ".join(f"WHEN '{status}' THEN true" for status in statuses)
    return f"CASE m.status {whens} ELSE false END"


# Transitions: arrays of equal length. Each returns the ids whose status changed, so the caller
# knows which events to write. Status only moves forward; the device guard stops a relay from
# reporting on a message it does not hold.
_DISPATCHED = f"""
WITH u AS (
    UPDATE messages m SET status = CASE WHEN m.status = 'queued' THEN 'dispatched' ELSE m.status END,
        device_id = v.device_id, acked_at = NULL, attempts = v.attempt,
        dispatched_at = coalesce(m.dispatched_at, v.at)
    FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[]) AS v(id, device_id, attempt, at)
    WHERE m.id = v.id AND {_status_in("queued", "dispatched")}
    RETURNING m.id, v.device_id, v.attempt, v.at,
        CASE WHEN m.dispatched_at = v.at
             THEN extract(epoch FROM v.at - greatest(m.queued_at, m.not_before))::float8 END AS waited
), attempt AS (
    INSERT INTO message_attempts (message_id, attempt, device_id, dispatched_at)
    SELECT id, attempt, device_id, at FROM u
    ON CONFLICT (message_id, attempt) DO UPDATE SET device_id = EXCLUDED.device_id,
        dispatched_at = EXCLUDED.dispatched_at, acked_at = NULL, outcome = NULL, reason = NULL, finished_at = NULL
)
SELECT id, waited FROM u
"""
_ACKED = f"""
WITH u AS (
    UPDATE messages m SET acked_at = v.at
    FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS v(id, device_id, at)
    WHERE m.id = v.id AND m.device_id = v.device_id AND {_status_in("dispatched")}
    RETURNING m.id, m.attempts, v.at
)
UPDATE message_attempts a SET acked_at = u.at FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
RETURNING a.message_id, extract(epoch FROM u.at - a.dispatched_at)::float8
"""
# Back to the queue (relay offline before ack, or a retryable failure): $4 outcome, $5 reason.
# device_id keeps naming the last relay: a late report from it still counts.
_REQUEUED = f"""
WITH u AS (
    UPDATE messages m SET acked_at = NULL
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
         AS v(id, device_id, at, outcome, reason)
    WHERE m.id = v.id AND m.device_id = v.device_id AND {_status_in("dispatched")}
    RETURNING m.id, m.attempts, v.at, v.outcome, v.reason
)
UPDATE message_attempts a SET outcome = u.outcome, reason = u.reason, finished_at = u.at
FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
RETURNING a.message_id
"""
# When a reported event happened: the relay's own time (v.reported, the report's `at`) if it is
# plausible — not more than 5 minutes after the gateway received the report (v.at) nor before the
# message was dispatched — bounded to [dispatched_at, v.at]; the gateway's receive time otherwise.
_REPORTED_AT = """CASE
    WHEN v.reported IS NULL OR v.reported > v.at + interval '5 minutes'
         OR v.reported < m.dispatched_at - interval '5 minutes' THEN v.at
    ELSE least(v.at, greatest(v.reported, m.dispatched_at)) END"""
# $3 receive time, $4 the relay's time (or NULL); each returns (id, the time stored, the seconds
# of the leg that ended: ack → sent, sent → delivered; for the metrics).
_SENT = f"""
UPDATE messages m SET status = 'sent', sent_at = {_REPORTED_AT}
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS v(id, device_id, at, reported)
WHERE m.id = v.id AND m.device_id = v.device_id AND {_status_in("queued", "dispatched")}
RETURNING m.id, m.sent_at, extract(epoch FROM m.sent_at - m.acked_at)::float8
"""
_DELIVERED = f"""
UPDATE messages m SET status = 'delivered', delivered_at = greatest({_REPORTED_AT}, m.sent_at),
    sent_at = coalesce(m.sent_at, {_REPORTED_AT})
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS v(id, device_id, at, reported)
WHERE m.id = v.id AND m.device_id = v.device_id AND m.status IN ('queued', 'dispatched', 'sent')
RETURNING m.id, m.delivered_at, extract(epoch FROM m.delivered_at - m.sent_at)::float8
"""
# A sent/delivered report for a message that already failed, from the relay it was last handed
# to: kept beside the failure (status stays failed), on the message and its last attempt. Moves
# only forward too (nothing -> sent -> delivered); returns the ids that changed.
_LATE_REPORT = """
WITH u AS (
    UPDATE messages m SET late_report_status = v.status, late_report_at = v.at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(id, device_id, status, at)
    WHERE m.id = v.id AND m.device_id = v.device_id AND m.status = 'failed'
      AND (m.late_report_status IS NULL OR (m.late_report_status = 'sent' AND v.status = 'delivered'))
    RETURNING m.id, m.attempts, v.status, v.at
), attempt AS (
    UPDATE message_attempts a SET late_report_status = u.status, late_report_at = u.at
    FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
)
SELECT id FROM u
"""
# $2 device guard: NULL for failures the gateway decides (expiry, no relay); for those the detail
# names the last attempt when it ended (e.g. "last attempt: radio_off on dev_…"), else $6.
_FAILED = f"""
UPDATE messages m SET status = 'failed', failed_at = {_REPORTED_AT}, failure_reason = v.reason,
    failure_reason_detail = CASE WHEN v.device_id IS NOT NULL THEN v.detail ELSE coalesce(
        (SELECT 'last attempt: ' || coalesce(a.reason, a.outcome) || ' on ' || a.device_id
         FROM message_attempts a
         WHERE a.message_id = m.id AND a.attempt = m.attempts AND a.outcome IS NOT NULL),
        v.detail) END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[])
     AS v(id, device_id, at, reported, reason, detail)
WHERE m.id = v.id AND (v.device_id IS NULL OR m.device_id = v.device_id)
  AND m.status IN ('queued', 'dispatched', 'sent')
RETURNING m.id, m.failed_at
"""
# Cancelled ($2 device, $4 attempt, $5 reason). By the gateway ($2 NULL): a message that is
# scheduled or waits in the queue, with the attempt count the gateway knows (a re-dispatch since
# bumps it, so a message on its way to a relay is never cancelled from under it). By the relay
# ($2 set): its answer `cancelled` to the cancel the gateway asked of it.
_CANCELLED = """
UPDATE messages m SET status = 'cancelled', cancelled_at = v.at, cancel_reason = v.reason
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::text[])
     AS v(id, device_id, at, attempt, reason)
WHERE m.id = v.id AND CASE
    WHEN v.device_id IS NULL THEN m.status IN ('scheduled', 'queued', 'dispatched') AND m.acked_at IS NULL
        AND m.attempts = v.attempt
    ELSE m.status = 'dispatched' AND m.device_id = v.device_id AND m.cancel_requested_at IS NOT NULL END
RETURNING m.id, m.cancelled_at
"""
# Close the current attempt of messages that finished (sent/failed).
_ATTEMPT_FINISH = """
UPDATE message_attempts a SET outcome = v.outcome, reason = v.reason, finished_at = v.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(id, outcome, reason, at), messages m
WHERE m.id = v.id AND a.message_id = m.id AND a.attempt = m.attempts
  AND (a.outcome IS NULL OR a.outcome = 'sent')
"""
# The event payload of message.* events, for the ids given.
_EVENT_DATA = """
SELECT m.id, m.account_id, m.status, m.to_number, m.device_id, d.name AS device_name, m.attempts,
       m.failure_reason, m.failure_reason_detail, m.metadata, m.kind, m.late_report_status, m.late_report_at,
       m.cancel_reason
FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.id = ANY($1::text[])
"""


async def mark_dispatched(
    conn: Conn, *, ids: list[str], devices: list[str | None], attempts: list[int], ats: list[datetime]
) -> list[tuple[str, float | None]]:
    """queued → dispatched (a re-dispatch keeps ``dispatched``); per changed message its id and,
    for a first dispatch, the seconds it waited since it could go."""
    return [(r[0], r[1]) for r in await conn.fetch(_DISPATCHED, ids, devices, attempts, ats)]


async def mark_acked(
    conn: Conn, *, ids: list[str], devices: list[str | None], ats: list[datetime]
) -> list[tuple[str, float | None]]:
    """The relay that holds each message took it; per change the id and seconds since dispatch."""
    return [(r[0], r[1]) for r in await conn.fetch(_ACKED, ids, devices, ats)]


async def mark_requeued(
    conn: Db,
    *,
    ids: list[str],
    devices: list[str | None],
    ats: list[datetime],
    outcomes: list[str | None],
    reasons: list[str | None],
) -> list[str]:
    """Back to the queue from the relay named; its attempt ends with ``outcome``."""
    return [r[0] for r in await conn.fetch(_REQUEUED, ids, devices, ats, outcomes, reasons)]


async def mark_cancelled(
    conn: Db,
    *,
    ids: list[str],
    devices: list[str | None],
    ats: list[datetime],
    attempts: list[int],
    reasons: list[str | None],
) -> list[Stored]:
    """Cancelled by the gateway (device None, guarded by the attempt count) or by its relay."""
    return [Stored(r[0], r[1]) for r in await conn.fetch(_CANCELLED, ids, devices, ats, attempts, reasons)]


async def mark_sent(
    conn: Conn,
    *,
    ids: list[str],
    devices: list[str | None],
    ats: list[datetime],
    reported: list[datetime | None],
) -> list[ReportStored]:
    """``sent`` reports of the relays that hold the messages."""
    return [ReportStored(r[0], r[1], r[2]) for r in await conn.fetch(_SENT, ids, devices, ats, reported)]


async def mark_delivered(
    conn: Conn,
    *,
    ids: list[str],
    devices: list[str | None],
    ats: list[datetime],
    reported: list[datetime | None],
) -> list[ReportStored]:
    """``delivered`` reports of the relays that hold the messages."""
    return [ReportStored(r[0], r[1], r[2]) for r in await conn.fetch(_DELIVERED, ids, devices, ats, reported)]


async def mark_failed(
    conn: Db,
    *,
    ids: list[str],
    devices: list[str | None],
    ats: list[datetime],
    reported: list[datetime | None],
    reasons: list[str | None],
    details: list[str | None],
) -> list[Stored]:
    """Failed, reported by a relay (device set) or decided by the gateway (device None)."""
    rows = await conn.fetch(_FAILED, ids, devices, ats, reported, reasons, details)
    return [Stored(r[0], r[1]) for r in rows]


async def record_late_reports(
    conn: Conn, *, ids: list[str], devices: list[str | None], status: str, ats: list[datetime]
) -> list[str]:
    """Sent/delivered reports for messages that already failed, kept beside the failure."""
    return [r[0] for r in await conn.fetch(_LATE_REPORT, ids, devices, [status] * len(ids), ats)]


async def finish_attempts(
    conn: Conn, *, ids: list[str], outcome: str, reasons: list[str | None], ats: list[datetime]
) -> None:
    """Close the current attempt of messages that finished with ``outcome``."""
    await conn.execute(_ATTEMPT_FINISH, ids, [outcome] * len(ids), reasons, ats)


async def event_data(conn: Db, ids: list[str]) -> list[EventDataRow]:
    """The ``message.*`` event payload facts of these messages."""
    return many(await conn.fetch(_EVENT_DATA, ids), EventDataRow)


# --- cancels and scheduled messages ------------------------------------------------------------
# A cancel asked of the relay that holds the message ($1 id, $2 device, $3 time, $4 reason):
# kept until the relay answers; the first request's time and reason stay.
_CANCEL_REQUESTED = """
UPDATE messages SET cancel_requested_at = coalesce(cancel_requested_at, $3),
    cancel_reason = coalesce(cancel_reason, $4)
WHERE id = $1 AND device_id = $2 AND status = 'dispatched' RETURNING id
"""
# Scheduled messages to release by $1 (restart and the pipeline's look-ahead horizon).
_SCHEDULED_DUE = """
SELECT id, account_id, to_number, body, sealed_body, priority, pinned_device_id, sim_slot, expires_at,
       not_before
FROM messages WHERE status = 'scheduled' AND not_before <= $1 AND batch_id IS NULL ORDER BY not_before, id
"""
# Held messages whose time came: scheduled -> queued; returns the ids released.
_RELEASE = f"""
UPDATE messages m SET status = 'queued' WHERE m.id = ANY($1::text[]) AND {_status_in("scheduled")} RETURNING m.id
"""


async def request_cancel(conn: Db, *, message_id: str, device_id: str, at: datetime, reason: str) -> bool:
    """Note a cancel asked of the relay holding the message; False if it holds it no more."""
    return await conn.fetchval(_CANCEL_REQUESTED, message_id, device_id, at, reason) is not None


async def scheduled_due(conn: Db, *, by: datetime) -> list[ScheduledRow]:
    """Scheduled messages (not list items) due by ``by``, in release order."""
    return many(await conn.fetch(_SCHEDULED_DUE, by), ScheduledRow)


async def release_scheduled(conn: Db, ids: Sequence[str]) -> list[str]:
    """scheduled → queued for those still scheduled; the ids released."""
    return [r[0] for r in await conn.fetch(_RELEASE, list(ids))]
