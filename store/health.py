"""Health and launch readiness: the SQL and the typed functions that run it."""

from __future__ import annotations

import msgspec

from store.database import Db
from store.rows import one

__all__ = ["WebhookReadiness", "messages_since", "ping", "webhook_readiness"]


class WebhookReadiness(msgspec.Struct, frozen=True):
    """The account's enabled webhook endpoints and the state of its latest test delivery."""

    endpoints: int
    last_test: str | None


_PING = "SELECT 1"
_WEBHOOK_READINESS = """
SELECT (SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND deleted_at IS NULL AND enabled)
           AS endpoints,
       (SELECT status FROM webhook_deliveries WHERE account_id = $1 AND event_type = 'webhook.test'
        ORDER BY id DESC LIMIT 1) AS last_test
"""
# Ids are ULIDs, so a time range is an index range.
_MESSAGES_SINCE = "SELECT count(*) FROM messages WHERE account_id = $1 AND id >= $2"


async def ping(db: Db) -> None:
    """One round trip; raises when the database does not answer."""
    await db.fetchval(_PING)


async def webhook_readiness(db: Db, *, account_id: str) -> WebhookReadiness:
    """What the webhook line of the readiness report needs."""
    row = one(await db.fetchrow(_WEBHOOK_READINESS, account_id), WebhookReadiness)
    assert row is not None
    return row


async def messages_since(db: Db, *, account_id: str, id_floor: str) -> int:
    """Messages the account had accepted since the time encoded in ``id_floor`` (a message id bound)."""
    count: int = await db.fetchval(_MESSAGES_SINCE, account_id, id_floor)
    return count
