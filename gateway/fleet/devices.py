"""Devices as the gateway sees them: the stored record plus the live view of a connected phone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol import Heartbeat, Hello
from store.devices import DeviceRow

__all__ = ["DeviceRecord", "LiveTelemetry", "device_from_row", "telemetry_from_row"]

DEFAULT_MAX_IN_FLIGHT = 10
DEFAULT_PER_MINUTE = 30


@dataclass(slots=True)
class DeviceRecord:
    """A paired device's stored settings."""

    id: str
    account_id: str
    name: str
    model: str
    app_version: str
    enabled: bool
    max_in_flight: int | None
    per_minute_limit: int | None
    per_day_limit: int | None
    paired_at: datetime
    last_seen_at: datetime | None
    sim_policy: str = "default"
    """How a SIM is chosen for messages that name none (``scheduler.SIM_POLICIES``)."""
    sim_limits: dict[int, int] = field(default_factory=dict)
    """Daily limit per SIM slot; slots not listed have none."""

    @property
    def effective_max_in_flight(self) -> int:
        """The in-flight window used for routing."""
        return self.max_in_flight or DEFAULT_MAX_IN_FLIGHT

    @property
    def effective_per_minute(self) -> int:
        """The per-minute sending limit used for routing (Android's own default is 30)."""
        return self.per_minute_limit or DEFAULT_PER_MINUTE


@dataclass(slots=True)
class LiveTelemetry:
    """What the phone last told us, kept in memory and flushed to the database periodically."""

    battery: int | None = None
    charging: bool | None = None
    signal: int | None = None
    network: str | None = None
    sims: list[dict[str, Any]] = field(default_factory=list)
    queue_length: int | None = None
    app_version: str | None = None
    last_seen_at: datetime | None = None

    def update_from(self, frame: Hello | Heartbeat, seen: datetime) -> None:
        """Take the fields a hello or heartbeat carries."""
        self.last_seen_at = seen
        self.sims = [{"slot": s.slot, "carrier": s.carrier, "ready": s.ready} for s in frame.sims]
        self.queue_length = frame.queue_length
        if frame.app_version:
            self.app_version = frame.app_version
        if isinstance(frame, Heartbeat):
            self.battery, self.charging, self.signal = frame.battery, frame.charging, frame.signal
            self.network = frame.network


def device_from_row(row: DeviceRow) -> DeviceRecord:
    """The :class:`DeviceRecord` of a devices row."""
    return DeviceRecord(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        model=row.model,
        app_version=row.app_version,
        enabled=row.enabled,
        max_in_flight=row.max_in_flight,
        per_minute_limit=row.per_minute_limit,
        per_day_limit=row.per_day_limit,
        paired_at=row.paired_at,
        last_seen_at=row.last_seen_at,
        sim_policy=row.sim_policy,
        sim_limits={int(slot): limit for slot, limit in row.sim_limits.items()},
    )


def telemetry_from_row(row: DeviceRow) -> LiveTelemetry:
    """The last flushed telemetry of a device (shown while it is offline)."""
    return LiveTelemetry(
        battery=row.battery,
        charging=row.charging,
        signal=row.signal,
        network=row.network,
        sims=list(row.sims),
        queue_length=row.queue_length,
        app_version=row.app_version,
        last_seen_at=row.last_seen_at,
    )
