"""Value types the gateway exchanges with the scheduler.

These are the nouns of the scheduler's public API: the :class:`Work` the
gateway hands in, the :class:`DeviceLimits` of a relay phone, and the
:class:`Dispatch` and :class:`Expiry` decisions handed back. All are frozen,
so the scheduler can keep them without copying and the gateway cannot change
them behind its back. :func:`is_retryable` tells which failure reasons a relay
reports are worth another attempt on another relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import msgspec

__all__ = [
    "RETRYABLE_REASONS",
    "SIM_POLICIES",
    "DeviceLimits",
    "Dispatch",
    "Expiry",
    "Priority",
    "Work",
    "is_retryable",
]


SIM_POLICIES = ("default", "round_robin", "least_used")
"""How a relay's SIM is chosen for a message that names none:

* ``default`` — the phone's default SIM (no slot is sent); when the relay has per-SIM limits,
  the first ready SIM (by slot) within its limit, so the next one takes over when it is used up;
* ``round_robin`` — the relay's ready SIMs within their limits in turn;
* ``least_used`` — the ready SIM within its limit with the fewest dispatches in the last 24 h.
"""


class Priority(IntEnum):
    """Sending priority; lower values go first within an account."""

    OTP = 0
    """One-time passwords and login codes: they expire with their code."""
    HIGH = 1
    """Transactional messages a person is waiting for."""
    NORMAL = 2
    """Ordinary notices."""
    LOW = 3
    """List and bulk items; never delay anything above them."""


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """Sending limits of one relay phone.

    ``per_minute`` defaults to 30 because Android itself throttles an app that
    sends more than 30 SMS a minute.
    """

    max_in_flight: int = 10
    """Messages dispatched to the relay and not yet reported sent or failed."""
    per_minute: int = 30
    """Dispatches in any sliding 60 s window."""
    per_day: int | None = None
    """Dispatches in any sliding 24 h window (SIM plan limits); ``None``: no limit."""
    sim_policy: str = "default"
    """Which SIM a message without a ``sim_slot`` goes out on (see :data:`SIM_POLICIES`)."""
    sim_per_day: tuple[tuple[int, int], ...] = ()
    """``(slot, limit)``: dispatches on that SIM in any sliding 24 h window. A message goes out
    on a SIM only while it is within its limit; slots not listed have none."""

    def __post_init__(self) -> None:
        if self.sim_policy not in SIM_POLICIES:
            raise ValueError(f"sim_policy must be one of {', '.join(SIM_POLICIES)}, not {self.sim_policy!r}")
        if any(limit < 1 for _, limit in self.sim_per_day):
            raise ValueError("per-SIM daily limits must be at least 1")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {self.max_in_flight}")
        if self.per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, not {self.per_minute}")
        if self.per_day is not None and self.per_day < 1:
            raise ValueError(f"per_day must be at least 1 or None, not {self.per_day}")


class Work(msgspec.Struct, frozen=True, gc=False):
    """One SMS message to schedule. Not tracked by the garbage collector (it holds no
    container), so a queue of a million costs no collector pass anything."""

    message_id: str
    account_id: str
    priority: Priority
    expires_at: float
    """Clock time after which the message must not be dispatched any more."""
    pinned_device: str | None = None
    """Manual relay mode: only this device of the account may send the message."""
    attempts: int = 0
    """Dispatches so far (non-zero when restored after a restart)."""
    sim_slot: int | None = None
    """SIM slot the message must go out on: only relays reporting that slot ready get it.
    ``None``: any relay with a ready SIM."""
    failures: int = 0
    """Retryable failures so far (non-zero when restored after a restart); the message
    fails for good at ``max_attempts`` of them. Reconnects do not count."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Decision: send ``message_id`` through ``device_id`` now."""

    message_id: str
    device_id: str
    attempt: int
    """Dispatches of this message including this one (1 for the first)."""
    sim_slot: int | None = None
    """The SIM to send on: the message's own ``sim_slot``, or the one the relay's SIM policy
    chose; None lets the phone use its default SIM."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """A message the scheduler gave up on because its expiry time passed.

    ``reason`` is ``"no_device"`` (queued, and at no moment since it was
    queued did the account have an *available* relay: online, enabled and
    with a ready SIM), ``"expired"`` (it waited while a relay was available,
    was handed to one before, or was dispatched but never acknowledged) or
    ``"relay_timeout"`` (a relay acknowledged it but never reported the result;
    it may or may not have been sent, and it is never sent again). ``detail``
    says more for people, e.g. ``"pinned relay dev_… was not available"``.
    """

    message_id: str
    reason: str
    detail: str | None = None


RETRYABLE_REASONS: frozenset[str] = frozenset(
    {"generic_failure", "no_service", "radio_off", "null_pdu", "limit_exceeded", "device_rejected"}
)
"""Failure reasons reported by a relay that another attempt may overcome."""


def is_retryable(reason: str) -> bool:
    """Whether a relay's failure ``reason`` is worth another attempt.

    Everything outside :data:`RETRYABLE_REASONS` (``"invalid_destination"``,
    ``"expired"``, unknown reasons…) is final.
    """
    return reason in RETRYABLE_REASONS
