"""The webhook delivery log the API reads (deliveries, their attempts, a manual retry) and the
``webhook.test`` delivery: the SQL and the typed functions that run it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from store.database import Db
from store.rows import many

__all__ = [
    "AttemptRow",
    "DeliveryDetailRow",
    "DeliveryRow",
    "delivery_attempts",
    "get_delivery",
    "insert_test_delivery",
    "list_deliveries",
    "retry_delivery_now",
]


class DeliveryRow(msgspec.Struct, frozen=True):
    """One row of ``webhook_deliveries`` as the API shows it."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    request_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    created_at: datetime


class DeliveryDetailRow(msgspec.Struct, frozen=True):
    """A delivery and its event's data."""

    delivery: DeliveryRow
    data: Any


class AttemptRow(msgspec.Struct, frozen=True):
    """One row of ``webhook_attempts``."""

    attempt: int
    trigger: str
    started_at: datetime
    duration_ms: int | None
    http_status: int | None
    error: str | None
    response_excerpt: str | None
    outcome: str
    next_attempt_at: datetime | None


# --- the delivery log ---------------------------------------------------------------------------

_DELIVERY_COLUMNS = (
    "d.id, d.endpoint_id, d.event_id, d.event_type, d.request_id, d.status, d.attempts, d.next_attempt_at,"
    " d.last_attempt_at, d.created_at"
)
# webhook.test: its one delivery, and the event marked so that fan-out skips it (same transaction
# as the event's insert, so the dispatcher never sees it unmarked).
_INSERT_TEST_DELIVERY = """
WITH marked AS (UPDATE events SET fanned_out_at = now() WHERE id = $4)
INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_id, event_type, request_id, next_attempt_at)
VALUES ($1, $2, $3, $4, 'webhook.test', NULL, now())
"""
_LIST_DELIVERIES = f"""
SELECT {_DELIVERY_COLUMNS}
FROM webhook_deliveries d
WHERE d.account_id = $1 AND ($2 = '' OR d.id < $2)
  AND ($4::text IS NULL OR d.endpoint_id = $4) AND ($5::text IS NULL OR d.event_type = $5)
  AND ($6::text IS NULL OR d.status = $6) AND ($7::text IS NULL OR d.request_id = $7)
ORDER BY d.id DESC LIMIT $3
"""
_GET_DELIVERY = f"""
SELECT {_DELIVERY_COLUMNS}, e.data::text AS data_json
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.id = $1 AND d.account_id = $2
"""
_ATTEMPTS = """
SELECT attempt, trigger, started_at, duration_ms, http_status, error, response_excerpt, outcome, next_attempt_at
FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt
"""
_RETRY_NOW = """
UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), manual = true
WHERE id = $1 AND account_id = $2 RETURNING id
"""


async def insert_test_delivery(
    conn: Db, *, delivery_id: str, account_id: str, endpoint_id: str, event_id: str
) -> None:
    """The delivery of the ``webhook.test`` event ``event_id`` (written in this transaction)."""
    await conn.execute(_INSERT_TEST_DELIVERY, delivery_id, account_id, endpoint_id, event_id)


async def list_deliveries(
    conn: Db,
    *,
    account_id: str,
    before: str,
    limit: int,
    endpoint_id: str | None,
    event_type: str | None,
    status: str | None,
    request_id: str | None,
) -> list[DeliveryRow]:
    """The account's deliveries, newest first, before the cursor ``before`` ('' from the newest)."""
    records = await conn.fetch(
        _LIST_DELIVERIES, account_id, before, limit, endpoint_id, event_type, status, request_id
    )
    return many(records, DeliveryRow)


async def get_delivery(conn: Db, *, delivery_id: str, account_id: str) -> DeliveryDetailRow | None:
    """One of the account's deliveries and its event's data."""
    record = await conn.fetchrow(_GET_DELIVERY, delivery_id, account_id)
    if record is None:
        return None
    fields = dict(record)
    data = msgspec.json.decode(fields.pop("data_json"))
    return DeliveryDetailRow(delivery=msgspec.convert(fields, DeliveryRow), data=data)


async def delivery_attempts(conn: Db, *, delivery_id: str) -> list[AttemptRow]:
    """Every attempt of the delivery, first first."""
    return many(await conn.fetch(_ATTEMPTS, delivery_id), AttemptRow)


async def retry_delivery_now(conn: Db, *, delivery_id: str, account_id: str) -> bool:
    """Make the delivery due now, its next attempt logged as manual; False when there is none."""
    return await conn.fetchval(_RETRY_NOW, delivery_id, account_id) is not None
