"""What the hub and the send pipeline need of a connected relay, whatever carries it.

Two kinds of relay implement :class:`RelayLink`: :class:`gateway.fleet.hub.RelayConnection` (a
WebSocket speaking docs/protocol.md) and :class:`gateway.mobile.link.PhoneLink` (the SMSGate
Android app: Server-Sent Events out, HTTP pulls and reports in). The pipeline commits a
``dispatched`` transition, then calls :meth:`RelayLink.send_message` and :meth:`RelayLink.flush`
on the very link its decision was made for; the link owns how the message reaches the phone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from gateway.fleet.devices import DeviceRecord, LiveTelemetry
from protocol import CloseCode

__all__ = ["CancelOutcome", "RelayLink"]

CancelOutcome = Literal["dropped", "requested", "not_held"]
"""What :meth:`RelayLink.cancel` did: dropped a message the phone never received (it is
cancelled now), asked the phone (its answer follows), or found nothing to cancel."""


class RelayLink(Protocol):
    """One live relay as the hub and the pipeline see it."""

    device: DeviceRecord
    telemetry: LiveTelemetry
    connected_at: float

    @property
    def is_open(self) -> bool:
        """Whether the link can take work now (a WebSocket session past hello, an SSE phone)."""

    def send_message(
        self, *, id: str, to: str, message: str, sim_slot: int | None, expires_at: datetime
    ) -> None:
        """Queue one committed ``dispatched`` message for the phone (no I/O; see :meth:`flush`)."""

    @property
    def can_cancel(self) -> bool:
        """Whether the phone understands a cancel (a WebSocket relay on protocol v1.1, every
        SMSGate phone)."""

    def cancel(self, message_id: str) -> CancelOutcome:
        """Ask the phone to drop ``message_id`` if it has not started sending it (only when
        :attr:`can_cancel`)."""

    async def flush(self) -> None:
        """Hand what was queued to the transport."""

    async def close(self, code: CloseCode, reason: str) -> None:
        """End the link (unpairing, replacement, shutdown); never blocks for long."""
