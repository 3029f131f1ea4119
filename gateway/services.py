"""What request handlers and background tasks can reach: built by the runtime, never global."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.access.auth import Authenticator
from gateway.access.ratelimit import KeyedTokenBuckets
from gateway.clock import Clock
from gateway.config import Settings
from gateway.fleet.devices import DeviceRecord
from gateway.fleet.hub import RelayHub
from gateway.fleet.inbound import InboundDesk
from gateway.limits import DailyBudget
from gateway.otp.writers import SendBatcher, VerifyBatcher
from gateway.secret import ServerSecret
from gateway.sending.caps import SendCaps
from gateway.sending.pipeline import Pipeline
from gateway.sending.queue_control import QueueControl
from gateway.webhooks.dispatcher import WebhookDispatcher

__all__ = ["Services"]


@dataclass(slots=True)
class Services:
    """Shared resources of one running gateway."""

    settings: Settings
    pool: asyncpg.Pool[Any]
    clock: Clock
    """The gateway's one clock: read time here, never from :mod:`time` or ``datetime.now``."""
    authenticator: Authenticator
    started_at: float
    """``clock.monotonic()`` at start, for uptime."""
    hub: RelayHub
    pipeline: Pipeline
    secret: ServerSecret
    webhooks: WebhookDispatcher
    pair_limits: KeyedTokenBuckets
    """Pairing attempts per client address."""
    idempotency_budget: DailyBudget
    """Requests with an ``Idempotency-Key`` per account and day."""
    queue: QueueControl
    """Pause state and blocking policies of the accounts' queues."""
    caps: SendCaps
    """Admits every send: queue state, the number's opt-out, per-account caps (day, month, per
    recipient per hour)."""
    http_port: int = 0
    relay_port: int = 0
    inbound: InboundDesk | None = None
    """Stores inbound SMS from both kinds of relay (None only where nothing receives)."""
    otp_sends: SendBatcher | None = None
    """Group-commit writer of OTP sends (task ``otp.sends``; None: one transaction each)."""
    otp_verifies: VerifyBatcher | None = None
    """Group-commit writer of OTP verifies (task ``otp.verifies``; None: one transaction each)."""

    def device_load(self, device_id: str) -> int:
        """Messages in flight on the device (sent to it and not yet finished)."""
        return self.pipeline.device_load(device_id)

    def device_changed(self, device: DeviceRecord) -> None:
        """A device was paired or its settings changed through the API: the hub's registry
        takes it and tells the pipeline."""
        self.hub.update_device(device)

    def device_removed(self, device_id: str) -> None:
        """A device was unpaired: its token stops opening sockets, its work is re-routed."""
        self.hub.forget_device(device_id)
