"""``GET /v1/queue`` (queue health) and ``POST /v1/queue/pause`` / ``/resume`` (queue control).

The queue's live view (depths, oldest age, relays, in flight) is this process's scheduler and
hub; ``last_minute`` and ``scheduled`` are counted in the database, so they include what other
processes did.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from gateway.api.routing import Call
from gateway.ids import id_floor
from gateway.sending.queue_control import BlockedReason
from gateway.services import Services
from store import messages as store

__all__ = [
    "QueueDepth",
    "QueueHealth",
    "QueueLastMinute",
    "QueueResponse",
    "examples",
    "get_queue",
    "pause",
    "resume",
]


class QueueDepth(msgspec.Struct, kw_only=True):
    """Messages waiting, by priority; ``scheduled`` ones wait for their ``send_at``."""

    otp: int
    high: int
    normal: int
    low: int
    scheduled: int


class QueueLastMinute(msgspec.Struct, kw_only=True):
    """What happened to the account's messages in the last 60 seconds."""

    accepted: int
    sent: int
    delivered: int
    failed: int


class QueueHealth(msgspec.Struct, kw_only=True):
    """The account's queue: state, depth, age, relays, capacity and recent throughput."""

    paused: bool
    blocked_reason: BlockedReason | None
    """Why sends are refused now (``queue_blocked``), or null."""
    depth: QueueDepth
    oldest_queued_age_seconds: float | None
    """How long the oldest waiting message has waited; null when none waits."""
    in_flight: int
    """Messages handed to the account's relays and not yet reported sent or failed."""
    relays_online: int
    capacity_per_minute: int
    """Sum of the per-minute limits of the account's online, enabled relays."""
    eta_seconds: int | None
    """Time the online relays need for what waits now (0 when nothing waits; null when
    something waits and no relay can send, or the queue is paused)."""
    last_minute: QueueLastMinute


class QueueResponse(msgspec.Struct, kw_only=True):
    """``{"ok": true, "queue": {...}}``."""

    ok: bool = True
    queue: QueueHealth


async def queue_health(svc: Services, account_id: str) -> QueueHealth:
    """The account's queue health (one database round trip for the last minute). Memory is read
    after that round trip, so that a message the database shows delivered is no longer counted
    in flight (unless it leaves memory at that very moment: reports are committed first)."""
    control = svc.queue
    now = svc.clock.time()
    recent = await store.queue_recent(
        svc.pool,
        account_id=account_id,
        accepted_since=id_floor("req", now - 60),
        events_since=id_floor("evt", now - 60),
    )
    otp, high, normal, low = svc.pipeline.scheduler.queue_depths(account_id)
    waiting = otp + high + normal + low
    capacity = control.capacity(account_id)
    blocked = control.blocked(account_id)
    paused = control.paused(account_id)
    eta: int | None = 0
    if waiting:
        eta = None if paused or not capacity.per_minute else math.ceil(60 * waiting / capacity.per_minute)
    age = control.oldest_age(account_id)
    return QueueHealth(
        paused=paused,
        blocked_reason=blocked.reason if blocked is not None else None,
        depth=QueueDepth(otp=otp, high=high, normal=normal, low=low, scheduled=recent.scheduled),
        oldest_queued_age_seconds=None if age is None else round(age, 3),
        in_flight=capacity.in_flight,
        relays_online=capacity.online,
        capacity_per_minute=capacity.per_minute,
        eta_seconds=eta,
        last_minute=QueueLastMinute(
            accepted=recent.accepted,
            sent=recent.sent,
            delivered=recent.delivered,
            failed=recent.failed,
        ),
    )


async def get_queue(call: Call[None, None]) -> QueueResponse:
    """The calling account's queue health."""
    return QueueResponse(queue=await queue_health(call.services, call.account_id))


async def pause(call: Call[None, None]) -> QueueResponse:
    """Pause the account's queue (idempotent): nothing is dispatched, sends answer queue_blocked."""
    await call.services.queue.set_paused(call.account_id, True)
    return QueueResponse(queue=await queue_health(call.services, call.account_id))


async def resume(call: Call[None, None]) -> QueueResponse:
    """Resume the account's queue (idempotent): what waited is dispatched again."""
    await call.services.queue.set_paused(call.account_id, False)
    return QueueResponse(queue=await queue_health(call.services, call.account_id))


def examples() -> dict[type[Any], Any]:
    """Example answers for the OpenAPI document."""
    health = QueueHealth(
        paused=False,
        blocked_reason=None,
        depth=QueueDepth(otp=0, high=2, normal=40, low=1200, scheduled=15),
        oldest_queued_age_seconds=84.2,
        in_flight=12,
        relays_online=3,
        capacity_per_minute=90,
        eta_seconds=829,
        last_minute=QueueLastMinute(accepted=95, sent=88, delivered=80, failed=1),
    )
    return {QueueResponse: QueueResponse(queue=health)}
