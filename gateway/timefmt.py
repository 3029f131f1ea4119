"""Time helpers: every time on the wire is RFC 3339 UTC with a ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_rfc3339", "rfc3339", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-03-14T12:30:00Z`` (milliseconds only when present)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime, or None unless it is an RFC 3339 time with an offset
    (``Z`` or ``±hh:mm``) in ASCII that stays within years 1-9999 once converted to UTC."""
    if not text.isascii() or not 20 <= len(text) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        if moment.tzinfo is None:
            return None
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
