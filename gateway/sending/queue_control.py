"""Queue control per account: pause and resume, and the policies that block sending.

A send is refused with ``queue_blocked`` (503) and ``details.reason``:

* ``paused`` — the account paused its queue (``POST /v1/queue/pause``): nothing of it is
  dispatched and nothing new is accepted until ``POST /v1/queue/resume``. The pause is stored
  (``accounts.queue_paused_at``), so it survives a restart. No ``Retry-After``: a person resumes.
* ``queue_full`` — ``RELAYGATE_MAX_QUEUE`` messages are already waiting; ``Retry-After`` is the
  time the account's online relays need to make room for one (60 s when none is online).
* ``stale_queue`` — the oldest waiting message has waited more than ``RELAYGATE_MAX_QUEUE_AGE``
  seconds (off by default): the relays are not keeping up, and piling on makes it worse.
  ``Retry-After: 60``.

Everything here reads the live view (the scheduler, the hub); the checks do no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from gateway.errors import ApiError
from gateway.logs import get_logger
from gateway.sending.pipeline import Pipeline
from store import messages as store

__all__ = ["Blocked", "BlockedReason", "QueueControl", "RelayCapacity"]

log = get_logger("gateway.sending.queue_control")

BlockedReason = Literal["paused", "queue_full", "stale_queue"]
STALE_RETRY_AFTER = 60
NO_RELAY_RETRY_AFTER = 60


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why an account's sends are refused, and when to retry (None: no hint)."""

    reason: BlockedReason
    message: str
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class RelayCapacity:
    """The account's relays as the live view sees them."""

    online: int
    """Relays connected (said hello)."""
    per_minute: int
    """Sum of the per-minute limits of the online, enabled relays."""
    in_flight: int
    """Messages handed to the account's relays and not finished."""


class QueueControl:
    """Pause state and blocking policies of every account's queue (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        pipeline: Pipeline,
        *,
        max_queue: int,
        max_queue_age: float = 0.0,
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self.max_queue = max_queue
        self.max_queue_age = max_queue_age
        self._paused: set[str] = set()

    async def load(self) -> None:
        """Restore the paused accounts (start-up, after the pipeline loaded its messages)."""
        for account_id in await store.queue_paused_accounts(self._pool):
            self._paused.add(account_id)
            self._pipeline.scheduler.set_paused(account_id, True)
        if self._paused:
            log.info("queue.paused_restored", accounts=len(self._paused))

    def paused(self, account_id: str) -> bool:
        """Whether the account's queue is paused."""
        return account_id in self._paused

    async def set_paused(self, account_id: str, paused: bool) -> None:
        """Pause or resume the account's queue: stored first, then in force at once."""
        await store.set_queue_paused(self._pool, account_id=account_id, paused=paused)
        if paused:
            self._paused.add(account_id)
        else:
            self._paused.discard(account_id)
        self._pipeline.scheduler.set_paused(account_id, paused)
        self._pipeline.wake()
        log.info("queue.resumed" if not paused else "queue.paused", account_id=account_id)

    def oldest_age(self, account_id: str) -> float | None:
        """Seconds the account's oldest queued message has waited in the queue (a scheduled
        message from its release; since the start of this process for messages it reloaded);
        None when none waits."""
        oldest = self._pipeline.scheduler.oldest_queued(account_id)
        return None if oldest is None else oldest[1]

    def capacity(self, account_id: str) -> RelayCapacity:
        """Online relays, their per-minute capacity and the messages in flight on them."""
        pipeline = self._pipeline
        online = per_minute = in_flight = 0
        for device in pipeline.hub.devices.values():
            if device.account_id != account_id:
                continue
            in_flight += pipeline.device_load(device.id)
            if pipeline.hub.is_online(device.id):
                online += 1
                if device.enabled:
                    per_minute += device.effective_per_minute
        return RelayCapacity(online=online, per_minute=per_minute, in_flight=in_flight)

    def blocked(self, account_id: str) -> Blocked | None:
        """Why sends of the account are refused now; None when they are not."""
        if account_id in self._paused:
            return Blocked("paused", "the account's queue is paused; resume it to send", None)
        depth = self._pipeline.queue_depth(account_id)
        if depth >= self.max_queue:
            per_minute = self.capacity(account_id).per_minute
            wait = (
                math.ceil(60 * (depth - self.max_queue + 1) / per_minute)
                if per_minute
                else NO_RELAY_RETRY_AFTER
            )
            return Blocked("queue_full", f"the account's queue is full ({depth} waiting); retry later", wait)
        if self.max_queue_age > 0:
            age = self.oldest_age(account_id)
            if age is not None and age > self.max_queue_age:
                return Blocked(
                    "stale_queue",
                    f"the oldest queued message has waited {int(age)} s; relays are not keeping up",
                    STALE_RETRY_AFTER,
                )
        return None

    def check(self, account_id: str) -> None:
        """Raise ``queue_blocked`` when the account's sends are refused now."""
        blocked = self.blocked(account_id)
        if blocked is None:
            return
        details: dict[str, Any] = {"reason": blocked.reason}
        headers: dict[str, str] = {}
        if blocked.retry_after is not None:
            seconds = max(1, math.ceil(blocked.retry_after))
            details["retry_after_seconds"] = seconds
            headers["Retry-After"] = str(seconds)
        if blocked.reason == "queue_full":
            details["queue_depth"] = self._pipeline.queue_depth(account_id)
        raise ApiError("queue_blocked", blocked.message, details, headers=headers)
