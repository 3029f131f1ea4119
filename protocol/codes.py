"""Close codes and error codes of the relay protocol.

Kept apart from :mod:`protocol.frames` so that :mod:`protocol.exceptions`
can name error codes without importing the frame definitions.
``docs/protocol.md`` tells relay developers what to do on each code.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "ErrorCode"]


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses, and what each tells the relay."""

    NORMAL = 1000
    """Normal closure."""
    GOING_AWAY = 1001
    """The gateway is shutting down; reconnect with backoff."""
    PROTOCOL_VIOLATION = 1008
    """Fatal protocol error (frame before hello, too many errors)."""
    MESSAGE_TOO_BIG = 1009
    """A frame exceeded :data:`MAX_FRAME_BYTES`."""
    INTERNAL_ERROR = 1011
    """The gateway failed; reconnect with backoff."""
    SESSION_REPLACED = 4000
    """A newer connection of the same device took over; do not reconnect."""
    DEVICE_UNPAIRED = 4001
    """The device was unpaired or its token revoked; pair again."""
    HEARTBEAT_TIMEOUT = 4002
    """No frame arrived within the heartbeat timeout."""
    TOO_MANY_FRAMES = 4008
    """The relay flooded the gateway; reconnect after backoff."""


class ErrorCode(enum.StrEnum):
    """Values of the ``code`` field of an ``error`` frame."""

    MALFORMED_FRAME = "malformed_frame"
    """Not valid JSON, not a JSON object, or a binary frame."""
    UNKNOWN_TYPE = "unknown_type"
    """The ``type`` field is missing, not a string, or not a known type."""
    INVALID_FIELD = "invalid_field"
    """A field is missing, has the wrong type, or breaks a limit."""
    OUT_OF_ORDER = "out_of_order"
    """The frame is not allowed in the session's current state."""
    UNKNOWN_ID = "unknown_id"
    """An ``ack`` names a command not sent in this session."""
    TOO_MANY_FRAMES = "too_many_frames"
    """The relay exceeded the frame rate limit."""
