"""Time helpers: every time on the wire is RFC 3339 UTC with a ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["rfc3339", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-03-14T12:30:00Z`` (milliseconds only when present)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
