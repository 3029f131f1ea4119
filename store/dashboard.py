"""Dashboard sessions and the live event feed: the SQL and the typed functions that run it."""

from __future__ import annotations

import msgspec

from store.accounts import PrincipalRow, principal_from
from store.database import Db
from store.rows import many

__all__ = [
    "LiveEventRow",
    "create_session",
    "delete_session",
    "events_since",
    "purge_sessions",
    "session_principal",
]


class LiveEventRow(msgspec.Struct, frozen=True):
    """An outbox event as the live feed forwards it."""

    id: str
    type: str
    data: str
    """The event's data as JSON text, passed on without decoding."""


_SESSION_CREATE = """
INSERT INTO dashboard_sessions (id_hash, token_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
"""
# Touches the session; no row when it is unknown, idle, expired, or its token was revoked.
_SESSION_PRINCIPAL = """
WITH s AS (
    UPDATE dashboard_sessions SET last_seen_at = now()
    WHERE id_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
    RETURNING token_id
)
SELECT t.id AS token_id, t.scopes, a.*
FROM s JOIN access_tokens t ON t.id = s.token_id AND t.revoked_at IS NULL
JOIN accounts a ON a.id = t.account_id
"""
_SESSION_DELETE = "DELETE FROM dashboard_sessions WHERE id_hash = $1"
_SESSION_PURGE = """
DELETE FROM dashboard_sessions
WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)
"""
_EVENTS_SINCE = """
SELECT id, type, data::text AS data FROM events WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""


async def create_session(db: Db, *, id_hash: bytes, token_id: str, max_age: float) -> None:
    """Store a session (by the hash of its id) of a token, ending ``max_age`` seconds from now."""
    await db.execute(_SESSION_CREATE, id_hash, token_id, max_age)


async def session_principal(db: Db, *, id_hash: bytes, idle_timeout: float) -> PrincipalRow | None:
    """Who a live session signs in (touching it), or None when it ended or its token was revoked."""
    return principal_from(await db.fetchrow(_SESSION_PRINCIPAL, id_hash, idle_timeout))


async def delete_session(db: Db, *, id_hash: bytes) -> None:
    """End a session (sign-out)."""
    await db.execute(_SESSION_DELETE, id_hash)


async def purge_sessions(db: Db, *, idle_timeout: float) -> None:
    """Drop sessions that expired or were idle longer than ``idle_timeout`` seconds."""
    await db.execute(_SESSION_PURGE, idle_timeout)


async def events_since(db: Db, *, account_id: str, after: str, limit: int) -> list[LiveEventRow]:
    """At most ``limit`` of the account's events with ids after ``after``, oldest first."""
    return many(await db.fetch(_EVENTS_SINCE, account_id, after, limit), LiveEventRow)
