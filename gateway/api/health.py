"""``GET /v1/health``: liveness and database reachability, without a token."""

from __future__ import annotations

import asyncio

import msgspec

from gateway import __version__
from gateway.api.routing import Call, Reply
from gateway.errors import ErrorBody
from gateway.services import Services
from store.health import ping

__all__ = ["Health", "health"]

DB_CHECK_TIMEOUT = 1.5
RETRY_AFTER = 2
"""``Retry-After`` seconds on a 503 (database down)."""


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Health report. ``ok`` is false (HTTP 503) when the database cannot be reached."""

    ok: bool
    status: str
    version: str
    database: str
    uptime_seconds: float
    error: ErrorBody | None = msgspec.field(default=None)


async def _database_up(svc: Services) -> bool:
    pool = svc.pool
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT):
            async with pool.acquire() as conn:
                await ping(conn)
    except Exception:  # whatever it is, the database is not answering: report, never raise
        return False
    return True


async def health(call: Call[None, None]) -> Reply:
    """Answer within ~2 s whatever the database does."""
    svc = call.services
    up = await _database_up(svc)
    report = Health(
        ok=up,
        status="ok" if up else "degraded",
        version=__version__,
        database="ok" if up else "down",
        uptime_seconds=round(svc.clock.monotonic() - svc.started_at, 3),
        error=None if up else ErrorBody(code="unavailable", message="database unreachable"),
    )
    if up:
        return Reply(report)
    return Reply(report, 503, headers={"Retry-After": str(RETRY_AFTER)})
