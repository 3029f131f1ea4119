"""Events a :class:`~protocol.session.RelaySession` hands to its adapter.

``RelaySession.events_received()`` drains them in the order they happened.
The adapter dispatches with ``match`` and turns each into an action: mark the
relay online, store telemetry, release a command from the retry queue, store
a report, mark the relay offline, or log a violation. Events are plain frozen
dataclasses; they hold the decoded frame where there is one, so the adapter
reads fields without decoding twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.frames import CancelResult, Heartbeat, Hello, Report

__all__ = [
    "CancelResultReceived",
    "CommandAcked",
    "Event",
    "HeartbeatReceived",
    "HeartbeatTimedOut",
    "HelloReceived",
    "ProtocolViolation",
    "ReportReceived",
]


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """A valid ``hello`` opened the session; ``welcome`` is already queued."""

    frame: Hello
    """The relay's ``hello``: app version, model, SIMs, queue length."""


@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """A ``heartbeat`` arrived with fresh telemetry."""

    frame: Heartbeat
    """Battery, signal, network, SIMs and queue length."""


@dataclass(frozen=True, slots=True)
class CommandAcked:
    """The relay took and persisted a command sent in this session.

    Emitted once per command: for its first ``ack``, or for its first
    ``report`` if that comes before any ``ack``.
    """

    id: str
    """Id of the acknowledged ``send`` command."""


@dataclass(frozen=True, slots=True)
class ReportReceived:
    """A delivery report arrived; the id may come from an earlier session.

    The adapter stores it, then calls ``RelaySession.ack_report``.
    """

    frame: Report
    """The report: id, status, reason, time on the phone, parts."""


@dataclass(frozen=True, slots=True)
class CancelResultReceived:
    """v1.1: the relay answered a ``cancel``; the id may come from an earlier session.

    For ``cancelled`` the adapter stores it, then calls ``RelaySession.ack_report(id,
    "cancelled")``; ``too_late`` needs no answer."""

    frame: CancelResult
    """The answer: id, result, time on the phone."""


@dataclass(frozen=True, slots=True)
class HeartbeatTimedOut:
    """No frame arrived within the heartbeat timeout; the session is closing with 4002."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The relay broke the protocol; an ``error`` frame or a close followed.

    Emitted for every rejected frame so the adapter can log it.
    """

    code: str
    """The ``error`` code sent, or ``frame_too_big`` for an oversize frame."""
    message: str
    """What was wrong, as sent to the relay."""


Event = (
    HelloReceived
    | HeartbeatReceived
    | CommandAcked
    | ReportReceived
    | CancelResultReceived
    | HeartbeatTimedOut
    | ProtocolViolation
)
"""Any event a session emits."""
