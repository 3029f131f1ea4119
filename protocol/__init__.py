"""The relaygate relay WebSocket protocol, sans-I/O.

This package defines the frames exchanged between the gateway and Android
relay phones (:mod:`protocol.frames`), the gateway-side state machine of one
connection (:mod:`protocol.session`), the events it emits
(:mod:`protocol.events`) and its exceptions (:mod:`protocol.exceptions`).

It performs no I/O and imports nothing but the standard library and msgspec;
the asyncio adapter in ``gateway/`` feeds it received frames and the time,
and writes out what it produces. ``docs/protocol.md`` describes the wire
format for relay developers.
"""

from protocol.codes import CloseCode, ErrorCode
from protocol.events import (
    CancelResultReceived,
    CommandAcked,
    Event,
    HeartbeatReceived,
    HeartbeatTimedOut,
    HelloReceived,
    ProtocolViolation,
    ReportReceived,
)
from protocol.exceptions import InvalidFrame, ProtocolError, ProtocolStateError
from protocol.frames import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_IN_FLIGHT,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    Ack,
    Cancel,
    CancelResult,
    Error,
    GatewayFrame,
    Heartbeat,
    Hello,
    RelayFrame,
    Report,
    ReportAck,
    Send,
    Sim,
    Welcome,
    decode_gateway_frame,
    decode_relay_frame,
    encode_frame,
)
from protocol.session import RelaySession, SessionState
from protocol.versions import CANCEL_SINCE, INBOUND_SINCE, SUBPROTOCOLS, ProtocolVersion, negotiate

__all__ = [
    "CANCEL_SINCE",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_IN_FLIGHT",
    "INBOUND_SINCE",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "SUBPROTOCOLS",
    "Ack",
    "Cancel",
    "CancelResult",
    "CancelResultReceived",
    "CloseCode",
    "CommandAcked",
    "Error",
    "ErrorCode",
    "Event",
    "GatewayFrame",
    "Heartbeat",
    "HeartbeatReceived",
    "HeartbeatTimedOut",
    "Hello",
    "HelloReceived",
    "InvalidFrame",
    "ProtocolError",
    "ProtocolStateError",
    "ProtocolVersion",
    "ProtocolViolation",
    "RelayFrame",
    "RelaySession",
    "Report",
    "ReportAck",
    "ReportReceived",
    "Send",
    "SessionState",
    "Sim",
    "Welcome",
    "decode_gateway_frame",
    "decode_relay_frame",
    "encode_frame",
    "negotiate",
]
