"""Webhook endpoints and the dispatcher's bookkeeping: the SQL and the typed functions that run
it (the delivery log the API reads is :mod:`store.deliveries`).

The dispatcher's bookkeeping is one statement per batch for every kind of write: fan-out (match
pending events to endpoints, insert the deliveries, mark the events) is one statement per batch
of events; taking due deliveries (with their event and endpoint) is one per round; recording
attempts (the attempt rows and the deliveries' new state) is one per batch of finished attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from store.database import Db
from store.rows import many, one

__all__ = [
    "AttemptRecord",
    "DueRow",
    "EndpointRow",
    "TargetRow",
    "count_endpoints",
    "delete_endpoint",
    "disable_gone",
    "endpoint_target",
    "fan_out",
    "get_endpoint",
    "insert_endpoint",
    "list_endpoints",
    "record_attempts",
    "rotate_secret",
    "take_due",
    "update_endpoint",
]


class EndpointRow(msgspec.Struct, frozen=True):
    """One row of ``webhook_endpoints`` as the API shows it (never its secrets)."""

    id: str
    account_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    previous_expires_at: datetime | None
    batch_max_events: int | None
    batch_max_wait_ms: int | None


class TargetRow(msgspec.Struct, frozen=True):
    """What an attempt needs of its endpoint: where to, whether it may, the secrets signing now."""

    url: str
    active: bool
    secret: str
    previous_secret: str | None
    batch_max_events: int | None
    batch_max_wait_ms: int | None


class DueRow(msgspec.Struct, frozen=True):
    """A pending delivery with its event and endpoint; ``due`` false for the first one not due yet."""

    id: str
    endpoint_id: str
    event_id: str
    attempts: int
    manual: bool
    due: bool
    next_attempt_at: datetime
    type: str
    created_at: datetime
    data_json: str
    url: str
    active: bool
    secret: str
    previous_secret: str | None
    batch_max_events: int | None
    batch_max_wait_ms: int | None


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A finished attempt to record: the attempt row and the delivery's new state."""

    delivery_id: str
    status: str  # the delivery's: pending | succeeded | failed | blocked
    next_attempt_at: datetime | None
    started_at: datetime
    trigger: str  # scheduled | manual
    duration_ms: int
    http_status: int | None
    error: str | None
    response_excerpt: str | None
    outcome: str  # the attempt's: succeeded | failed | blocked


# --- endpoints ----------------------------------------------------------------------------------

_ENDPOINT_COLUMNS = (
    "id, account_id, url, events, description, enabled, disabled_reason, created_at, previous_expires_at,"
    " batch_max_events, batch_max_wait_ms"
)
_COUNT = "SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND deleted_at IS NULL"
_INSERT = f"""
INSERT INTO webhook_endpoints (id, account_id, url, events, description, secret, batch_max_events,
                               batch_max_wait_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_ENDPOINT_COLUMNS}
"""
_GET = f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
_LIST = f"""
SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
WHERE account_id = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3
"""
# $3 url, $4 events, $5 enabled, $6 description: NULL = unchanged. Re-enabling clears the reason.
# $7 true: set batching to $8/$9 (NULL/NULL = off); false: unchanged.
_UPDATE = f"""
UPDATE webhook_endpoints SET url = coalesce($3, url), events = coalesce($4, events),
    enabled = coalesce($5, enabled), description = coalesce($6, description),
    disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
    batch_max_events = CASE WHEN $7 THEN $8 ELSE batch_max_events END,
    batch_max_wait_ms = CASE WHEN $7 THEN $9 ELSE batch_max_wait_ms END
WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING {_ENDPOINT_COLUMNS}
"""
# Deleting stops the endpoint's pending deliveries in the same statement.
_DELETE = """
WITH gone AS (
    UPDATE webhook_endpoints SET deleted_at = now(), enabled = false
    WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING id
), stopped AS (
    UPDATE webhook_deliveries d SET status = 'failed', next_attempt_at = NULL
    FROM gone WHERE d.endpoint_id = gone.id AND d.status = 'pending'
)
SELECT id FROM gone
"""
_ROTATE = f"""
UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = now() + make_interval(secs => $4),
    secret = $3
WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING {_ENDPOINT_COLUMNS}
"""
# 410 Gone: disable the endpoint and stop its pending deliveries, in one statement.
_DISABLE_GONE = """
WITH disabled AS (
    UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1 RETURNING id
)
UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL WHERE endpoint_id = $1 AND status = 'pending'
"""
_TARGET = """
SELECT url, enabled AND deleted_at IS NULL AS active, secret,
       CASE WHEN previous_expires_at > now() THEN previous_secret END AS previous_secret,
       batch_max_events, batch_max_wait_ms
FROM webhook_endpoints WHERE id = $1
"""


async def count_endpoints(conn: Db, *, account_id: str) -> int:
    """The account's endpoints (deleted ones do not count)."""
    count: int = await conn.fetchval(_COUNT, account_id)
    return count


async def insert_endpoint(
    conn: Db,
    *,
    endpoint_id: str,
    account_id: str,
    url: str,
    events: list[str],
    description: str,
    secret: str,
    batch_max_events: int | None,
    batch_max_wait_ms: int | None,
) -> EndpointRow:
    """A new endpoint."""
    row = one(
        await conn.fetchrow(
            _INSERT,
            endpoint_id,
            account_id,
            url,
            events,
            description,
            secret,
            batch_max_events,
            batch_max_wait_ms,
        ),
        EndpointRow,
    )
    assert row is not None
    return row


async def get_endpoint(conn: Db, *, endpoint_id: str, account_id: str) -> EndpointRow | None:
    """One of the account's endpoints, unless deleted."""
    return one(await conn.fetchrow(_GET, endpoint_id, account_id), EndpointRow)


async def list_endpoints(conn: Db, *, account_id: str, after: str, limit: int) -> list[EndpointRow]:
    """The account's endpoints in id order, after the cursor ``after`` ('' from the start)."""
    return many(await conn.fetch(_LIST, account_id, after, limit), EndpointRow)


async def update_endpoint(
    conn: Db,
    *,
    endpoint_id: str,
    account_id: str,
    url: str | None,
    events: list[str] | None,
    enabled: bool | None,
    description: str | None,
    set_batch: bool,
    batch_max_events: int | None,
    batch_max_wait_ms: int | None,
) -> EndpointRow | None:
    """Change what is given (None = unchanged; batching only when ``set_batch``)."""
    record = await conn.fetchrow(
        _UPDATE,
        endpoint_id,
        account_id,
        url,
        events,
        enabled,
        description,
        set_batch,
        batch_max_events,
        batch_max_wait_ms,
    )
    return one(record, EndpointRow)


async def delete_endpoint(conn: Db, *, endpoint_id: str, account_id: str) -> bool:
    """Delete the endpoint and stop its pending deliveries; False when there was none."""
    return await conn.fetchval(_DELETE, endpoint_id, account_id) is not None


async def rotate_secret(
    conn: Db, *, endpoint_id: str, account_id: str, secret: str, overlap_seconds: int
) -> EndpointRow | None:
    """Sign with ``secret`` from now on, and with the old one too for ``overlap_seconds``."""
    return one(await conn.fetchrow(_ROTATE, endpoint_id, account_id, secret, overlap_seconds), EndpointRow)


async def disable_gone(conn: Db, *, endpoint_id: str, reason: str) -> None:
    """Disable the endpoint with ``reason`` and stop its pending deliveries."""
    await conn.execute(_DISABLE_GONE, endpoint_id, reason)


async def endpoint_target(conn: Db, *, endpoint_id: str) -> TargetRow | None:
    """The endpoint as an attempt needs it now."""
    return one(await conn.fetchrow(_TARGET, endpoint_id), TargetRow)


# --- fan-out and due deliveries -------------------------------------------------------------------

# Events not yet matched (oldest first, locked against other dispatchers) → one delivery per
# (event, subscribed enabled endpoint) → the events marked: one statement, so one commit.
_FAN_OUT = """
WITH pending AS (
    SELECT id, account_id, type, data FROM events WHERE fanned_out_at IS NULL ORDER BY id LIMIT $1
    FOR UPDATE SKIP LOCKED
), delivered AS (
    INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_id, event_type, request_id,
                                    next_attempt_at)
    SELECT 'dlv_' || substr(e.id, 5) || '_' || substr(w.id, 5), e.account_id, w.id, e.id, e.type,
           e.data ->> 'request_id', now()
    FROM pending e JOIN webhook_endpoints w
      ON w.account_id = e.account_id AND w.enabled AND w.deleted_at IS NULL AND e.type = ANY (w.events)
    ORDER BY e.id
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING 1
), marked AS (
    UPDATE events SET fanned_out_at = now() FROM pending WHERE events.id = pending.id RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS events, (SELECT count(*) FROM delivered) AS deliveries
"""
# The earliest pending deliveries not in progress here ($2), with their event and endpoint:
# up to $1 - 1 due ones and, if there is one, the next not yet due (``due`` false), whose time
# tells the dispatcher how long it may sleep.
_TAKE_DUE = """
SELECT d.id, d.endpoint_id, d.event_id, d.attempts, d.manual, d.next_attempt_at <= now() AS due,
       d.next_attempt_at, e.type, e.created_at, e.data::text AS data_json,
       w.url, w.enabled AND w.deleted_at IS NULL AS active, w.secret,
       CASE WHEN w.previous_expires_at > now() THEN w.previous_secret END AS previous_secret,
       w.batch_max_events, w.batch_max_wait_ms
FROM (SELECT id, endpoint_id, event_id, attempts, manual, next_attempt_at FROM webhook_deliveries
      WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND NOT (id = ANY ($2::text[]))
      ORDER BY next_attempt_at LIMIT $1) d
JOIN events e ON e.id = d.event_id
JOIN webhook_endpoints w ON w.id = d.endpoint_id
ORDER BY d.next_attempt_at, d.id
"""


async def fan_out(conn: Db, *, limit: int) -> int:
    """Match up to ``limit`` pending events to endpoints; the number of events fanned out."""
    row = await conn.fetchrow(_FAN_OUT, limit)
    assert row is not None
    events: int = row["events"]
    return events


async def take_due(conn: Db, *, limit: int, exclude: Sequence[str]) -> tuple[list[DueRow], datetime | None]:
    """Up to ``limit`` due deliveries not in ``exclude``, oldest due first, and when the next one
    not taken falls due (None: none pending; a past time: more are due than were taken)."""
    rows = [_due_row(r) for r in await conn.fetch(_TAKE_DUE, limit + 1, list(exclude))]
    taken = [r for r in rows[:limit] if r.due]  # due rows come first: the order is by time
    rest = rows[len(taken) :]
    return taken, (rest[0].next_attempt_at if rest else None)


def _due_row(r: Any) -> DueRow:
    # built positionally: one per delivery on the dispatcher's hot path
    return DueRow(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]
    )


# --- attempts -----------------------------------------------------------------------------------

# One statement per batch of finished attempts: the deliveries' new state and their attempt rows
# (the function relaygate_record_attempts in schema.sql, planned once per connection).
_RECORD_ATTEMPTS = """
SELECT relaygate_record_attempts($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
                                 $6::integer[], $7::integer[], $8::text[], $9::text[], $10::text[])
"""


async def record_attempts(conn: Db, batches: Sequence[Sequence[AttemptRecord]]) -> list[None]:
    """Record every attempt of ``batches`` (one sequence per HTTP request) with one statement.

    Usable directly as a :class:`store.batcher.Batcher` write function. A delivery appears at
    most once in all of ``batches`` (the dispatcher attempts a delivery once at a time)."""
    records = [r for batch in batches for r in batch]
    if records:
        await conn.execute(
            _RECORD_ATTEMPTS,
            [r.delivery_id for r in records],
            [r.status for r in records],
            [r.next_attempt_at for r in records],
            [r.started_at for r in records],
            [r.trigger for r in records],
            [r.duration_ms for r in records],
            [r.http_status for r in records],
            [r.error for r in records],
            [r.response_excerpt for r in records],
            [r.outcome for r in records],
        )
    return [None] * len(batches)
