"""From the SMSGate app's state snapshots to relaygate's reports (pure, no I/O).

The app reports a message by sending its whole snapshot again and again, in any order: the
message state, the state of each recipient with an error text, and a timestamped history. A
relaygate message has one recipient, so the snapshot is read as "the furthest this phone got":

* ``Pending`` (a pull the app de-duplicated) and ``Processed`` (handed to the radio) → acked;
* ``Sent`` → sent; ``Delivered`` → sent, then delivered; ``Failed`` → failed with a reason
  read from the error text (sent first if the history holds ``Sent``: a failure after sent is
  final);
* ``Cancelled`` → :attr:`Outcome.cancelled` (the cancel hook; see :mod:`gateway.mobile.link`);
  ``Cancelling`` → nothing yet.

Monotonic merging is the pipeline's: status only moves forward in SQL, so a stale or repeated
snapshot changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.mobile.shapes import MobileState, StateReport

__all__ = ["Outcome", "failure_reason", "outcome", "parse_app_time"]

_RANK: dict[MobileState, int] = {
    "Pending": 0,
    "Cancelling": 0,
    "Processed": 1,
    "Sent": 2,
    "Delivered": 3,
    "Failed": 4,
    "Cancelled": 4,
}

_REASONS: tuple[tuple[str, str], ...] = (
    ("RESULT_ERROR_RADIO_OFF", "radio_off"),
    ("RESULT_ERROR_NO_SERVICE", "no_service"),
    ("RESULT_NO_DEFAULT_SMS_APP", "device_rejected"),
    ("RESULT_RADIO_NOT_AVAILABLE", "radio_off"),
    ("RESULT_ERROR_NULL_PDU", "null_pdu"),
    ("RESULT_ERROR_LIMIT_EXCEEDED", "limit_exceeded"),
    ("RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED", "invalid_destination"),
    ("RESULT_ERROR_SHORT_CODE_NOT_ALLOWED", "invalid_destination"),
    ("RESULT_INVALID_SMS_FORMAT", "invalid_destination"),
    ("RESULT_INVALID_ARGUMENTS", "invalid_destination"),
    ("RESULT_ERROR_GENERIC_FAILURE", "generic_failure"),
    ("TTL EXPIRED", "expired"),
    ("DELIVERY RESULT", "delivery_failed"),
)


def failure_reason(error: str | None) -> str:
    """Our ``reason`` for the app's free error text (``smsgate_error`` when not recognisable:
    final, never retried)."""
    if not error:
        return "smsgate_error"
    text = error.upper()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return "smsgate_error"


def parse_app_time(text: str | None) -> datetime | None:
    """The app's ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` (or RFC 3339); None if absent or unreadable
    (the gateway's own time is used then)."""
    if not text or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one snapshot says happened; times are the phone's (None: unknown)."""

    acked: bool
    sent: bool
    sent_at: datetime | None
    delivered: bool
    delivered_at: datetime | None
    failed: bool
    reason: str | None
    detail: str | None
    failed_at: datetime | None
    cancelled: bool


def outcome(report: StateReport) -> Outcome:
    """Read one snapshot (see the module docstring)."""
    states: list[MobileState] = [r.state for r in report.recipients] or [report.state]
    furthest = max(states, key=lambda s: _RANK[s])
    if _RANK[report.state] > _RANK[furthest]:
        furthest = report.state
    history = report.states
    error = next((r.error for r in report.recipients if r.error), None)
    failed = furthest == "Failed"
    return Outcome(
        acked=furthest not in ("Cancelling", "Cancelled"),
        sent=furthest in ("Sent", "Delivered") or (failed and "Sent" in history),
        sent_at=parse_app_time(history.get("Sent")),
        delivered=furthest == "Delivered",
        delivered_at=parse_app_time(history.get("Delivered")),
        failed=failed,
        reason=failure_reason(error) if failed else None,
        detail=error[:500] if failed and error else None,
        failed_at=parse_app_time(history.get("Failed")),
        cancelled=furthest == "Cancelled",
    )
