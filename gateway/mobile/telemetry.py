"""Telemetry from the SMSGate app's ``system:ping`` webhook (its only source of battery and
network data): ``payload.health.checks`` holds ``battery:level`` (percent),
``battery:charging`` (Android's plug flags; 0 = not charging), ``connection:status`` (1 =
online) and ``connection:transport`` (flags: 1 cellular, 2 Wi-Fi, 4 Ethernet, as we read
them). Unknown or malformed values leave the field as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.fleet.devices import LiveTelemetry

__all__ = ["apply_ping"]

_TRANSPORTS = ((2, "wifi"), (4, "ethernet"), (1, "cellular"))


def _observed(checks: dict[str, Any], name: str) -> int | None:
    check = checks.get(name)
    value = check.get("observedValue") if isinstance(check, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if -(2**31) < value < 2**31 else None


def apply_ping(telemetry: LiveTelemetry, payload: dict[str, Any], seen: datetime) -> None:
    """Take what a ``system:ping`` payload says."""
    health = payload.get("health", payload)
    checks = health.get("checks") if isinstance(health, dict) else None
    telemetry.last_seen_at = seen
    if not isinstance(checks, dict):
        return
    level = _observed(checks, "battery:level")
    if level is not None and 0 <= level <= 100:
        telemetry.battery = level
    charging = _observed(checks, "battery:charging")
    if charging is not None:
        telemetry.charging = charging != 0
    status = _observed(checks, "connection:status")
    transport = _observed(checks, "connection:transport")
    if status == 0:
        telemetry.network = "none"
    elif transport is not None:
        telemetry.network = next((name for bit, name in _TRANSPORTS if transport & bit), "other")
    version = health.get("version") if isinstance(health, dict) else None
    if isinstance(version, str) and 0 < len(version) <= 32 and version.isprintable():
        telemetry.app_version = version
