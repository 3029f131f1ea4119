"""Launch readiness: one pass/warn/fail line per go-live check of an account.

The checks read what the gateway already knows (the calling token, the account, the live relay
view, webhook deliveries, recent volume, the queue) and decide nothing else; each is a pure
function of those facts so that every state of every check is easy to test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "Check",
    "RelayFacts",
    "check_limits",
    "check_queue",
    "check_relays",
    "check_subscription",
    "check_token",
    "check_webhook",
    "ready",
]

Status = Literal["pass", "warn", "fail"]

SEND_SCOPES = ("messages.send", "otp.send")
FOLLOW_SCOPES = ("messages.read",)
SUBSCRIPTION_WARN_DAYS = 7
LOW_BATTERY = 20
WEAK_SIGNAL = 1
VOLUME_WARN_SHARE = 0.8
QUEUE_WARN_SHARE = 0.8


class Check(msgspec.Struct, kw_only=True):
    """One go-live check."""

    id: Literal["token", "subscription", "relays_online", "webhook", "limits", "queue"]
    status: Status
    message: str


@dataclass(frozen=True, slots=True)
class RelayFacts:
    """What readiness needs to know of one paired relay."""

    name: str
    online: bool
    enabled: bool
    sim_ready: bool
    battery: int | None
    charging: bool | None
    signal: int | None
    per_minute: int
    per_day: int | None


def check_token(scopes: Iterable[str]) -> Check:
    """The calling token can send (SMS or OTP) and read what it sent."""
    held = set(scopes)
    can_send = [s for s in SEND_SCOPES if s in held]
    if not can_send:
        return Check(id="token", status="fail", message="this token has neither messages.send nor otp.send")
    missing = [s for s in (*SEND_SCOPES, *FOLLOW_SCOPES) if s not in held]
    if missing:
        return Check(
            id="token",
            status="warn",
            message=f"this token can send ({', '.join(can_send)}) but lacks {', '.join(missing)}",
        )
    return Check(id="token", status="pass", message="this token can send SMS and OTP and read their status")


def check_subscription(expires_at: datetime | None, now: datetime) -> Check:
    """The subscription is active, and not about to end."""
    if expires_at is None:
        return Check(id="subscription", status="pass", message="active, no expiry")
    if expires_at <= now:
        return Check(
            id="subscription", status="fail", message="the subscription has expired; renew it to send"
        )
    days = (expires_at - now).total_seconds() / 86400
    if days < SUBSCRIPTION_WARN_DAYS:
        return Check(id="subscription", status="warn", message=f"active, ends in {days:.1f} days")
    return Check(id="subscription", status="pass", message=f"active, {int(days)} days left")


def check_relays(relays: list[RelayFacts]) -> Check:
    """At least one enabled relay is online with a ready SIM; warn on weak ones."""
    usable = [r for r in relays if r.online and r.enabled and r.sim_ready]
    if not usable:
        online = sum(1 for r in relays if r.online)
        detail = f"{online} of {len(relays)} paired relays online" if relays else "no relay is paired yet"
        return Check(
            id="relays_online",
            status="fail",
            message=f"no enabled relay is online with a ready SIM ({detail})",
        )
    weak = [
        r.name
        for r in usable
        if (r.battery is not None and r.battery < LOW_BATTERY and not r.charging)
        or (r.signal is not None and r.signal <= WEAK_SIGNAL)
    ]
    if weak:
        return Check(
            id="relays_online",
            status="warn",
            message=f"{len(usable)} relays ready; low battery or weak signal on {', '.join(sorted(weak)[:5])}",
        )
    return Check(id="relays_online", status="pass", message=f"{len(usable)} relays online with a ready SIM")


def check_webhook(endpoints: int, last_test: str | None) -> Check:
    """An endpoint is configured and its last test event was delivered."""
    if endpoints == 0:
        return Check(
            id="webhook",
            status="warn",
            message="no webhook endpoint: you will not hear about sent, delivered and failed messages",
        )
    if last_test is None:
        return Check(
            id="webhook", status="warn", message="no test event sent yet: POST /v1/webhooks/{id}/test"
        )
    if last_test != "succeeded":
        return Check(id="webhook", status="warn", message=f"the last test event is {last_test}")
    return Check(id="webhook", status="pass", message="the last test event was delivered")


def check_limits(relays: list[RelayFacts], sent_last_day: int) -> Check:
    """The enabled relays' daily capacity covers the account's volume of the last 24 hours."""
    capacity = 0
    for r in relays:
        if r.enabled:
            daily = r.per_minute * 1440
            capacity += daily if r.per_day is None else min(daily, r.per_day)
    if capacity == 0:
        return Check(id="limits", status="fail", message="no enabled relay: no sending capacity")
    share = sent_last_day / capacity
    if share >= VOLUME_WARN_SHARE:
        return Check(
            id="limits",
            status="warn",
            message=f"{sent_last_day} messages in 24 h use {share:.0%} of the relays' {capacity}/day",
        )
    return Check(
        id="limits", status="pass", message=f"{sent_last_day} messages in 24 h; relays allow {capacity}/day"
    )


def check_queue(depth: int, max_queue: int, blocked_reason: str | None = None, why: str = "") -> Check:
    """Sending is not blocked by the queue: not paused, not full, not stale (``blocked_reason``
    is the one ``queue_blocked`` would name, ``why`` its message)."""
    if blocked_reason is not None:
        because = f" ({why})" if why else ""
        return Check(id="queue", status="fail", message=f"sending is blocked: {blocked_reason}{because}")
    if depth >= max_queue:
        return Check(id="queue", status="fail", message=f"the queue is full ({depth} of {max_queue})")
    if depth >= QUEUE_WARN_SHARE * max_queue:
        return Check(id="queue", status="warn", message=f"the queue is nearly full ({depth} of {max_queue})")
    return Check(id="queue", status="pass", message=f"{depth} messages waiting")


def ready(checks: list[Check]) -> bool:
    """Ready when no check fails."""
    return all(c.status != "fail" for c in checks)
