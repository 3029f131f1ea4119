"""One webhook request and what came of it: the receiver's answer (status, an excerpt of the
body, ``Retry-After``, 410 Gone), a refused address (SSRF guard) or a connection failure."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from gateway.webhooks.ssrf import BlockedAddress, check_address

__all__ = ["EXCERPT_BYTES", "MAX_RETRY_AFTER", "Outcome", "post", "retry_after"]

EXCERPT_BYTES = 512
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended."""

    outcome: str  # succeeded | failed | blocked
    http_status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    gone: bool = False


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header (seconds or an HTTP date) asks for, capped at a day."""
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, (moment - now).total_seconds()), MAX_RETRY_AFTER)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    now: Callable[[], datetime],
) -> Outcome:
    """POST ``body`` to ``url`` (no redirects followed) and classify the result."""
    host = urlsplit(url).hostname or ""
    try:
        with contextlib.suppress(ValueError):  # a literal address bypasses the resolver
            check_address(host.strip("[]"), allow_private=allow_private)
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            # The customer's bytes: PostgreSQL cannot store U+0000 in text, so it is shown as U+FFFD.
            raw = await resp.content.read(EXCERPT_BYTES)
            excerpt = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
            if 200 <= resp.status < 300:
                return Outcome("succeeded", http_status=resp.status, excerpt=excerpt)
            wait = retry_after(resp.headers.get("Retry-After"), now()) if resp.status in (429, 503) else None
            return Outcome(
                "failed", http_status=resp.status, excerpt=excerpt, retry_after=wait, gone=resp.status == 410
            )
    except BlockedAddress as exc:
        return Outcome("blocked", error=f"blocked: {exc}")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, BlockedAddress):
            return Outcome("blocked", error=f"blocked: {exc.os_error}")
        return Outcome("failed", error=f"connection_error: {type(exc).__name__}")
    except TimeoutError:
        return Outcome("failed", error="timeout")
    except aiohttp.ClientError as exc:
        return Outcome("failed", error=f"connection_error: {type(exc).__name__}")
