"""Frames of the relay WebSocket protocol, versions 1 and 1.1, and their JSON codec.

Every frame is a JSON object sent as one WebSocket *text* frame, tagged by
its ``"type"`` field. Each frame type is a :class:`msgspec.Struct`; the two
directions are the unions :data:`RelayFrame` (relay → gateway) and
:data:`GatewayFrame` (gateway → relay), each decoded by one typed decoder
built once at import.

Limits are ``msgspec.Meta`` constraints, so they are enforced when a frame is
*decoded*; constructing a Struct in Python does not validate it. Unknown
fields are ignored in both directions so that a newer peer can add fields
without breaking an older one.

The decoders never let a ``msgspec`` exception escape: every failure becomes
an :class:`~protocol.exceptions.InvalidFrame` carrying the error code the
gateway answers with (``malformed_frame``, ``unknown_type`` or
``invalid_field``). ``docs/protocol.md`` is the human-readable form of this
module and must be kept in step with it.

Frames added by a minor version (``cancel``, ``cancel_result``) decode in any session; the
session (:mod:`protocol.session`) refuses them under an older negotiated version
(:mod:`protocol.versions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from protocol.codes import CloseCode, ErrorCode
from protocol.exceptions import InvalidFrame

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_IN_FLIGHT",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "STORABLE_TEXT",
    "SUBPROTOCOL",
    "Ack",
    "Cancel",
    "CancelResult",
    "CloseCode",
    "Error",
    "ErrorCode",
    "GatewayFrame",
    "Heartbeat",
    "Hello",
    "RelayFrame",
    "Report",
    "ReportAck",
    "Send",
    "Sim",
    "Welcome",
    "decode_gateway_frame",
    "decode_relay_frame",
    "encode_frame",
]

PROTOCOL_VERSION: Final = 1
"""Major version carried in ``hello``/``welcome`` (1 for v1 and v1.1: the subprotocol says which
minor version the session runs; see :mod:`protocol.versions`)."""

SUBPROTOCOL: Final = "relaygate.v1"
"""``Sec-WebSocket-Protocol`` value that selects version 1 (``protocol.versions`` has them all)."""

MAX_FRAME_BYTES: Final = 65536
"""Largest frame, in bytes of UTF-8, either side may send."""

DEFAULT_HEARTBEAT_INTERVAL: Final = 30
"""Seconds between two ``heartbeat`` frames, unless the gateway says otherwise."""

DEFAULT_MAX_IN_FLIGHT: Final = 10
"""Commands a relay may hold unacknowledged or unreported at once."""


STORABLE_TEXT: Final = r"^[^\x00]*\Z"
r"""Pattern every string a relay sends must match: no U+0000, which PostgreSQL cannot store in
``text``/``jsonb``. ``\Z`` (not ``$``) so that a trailing newline is not special. Lone UTF-16
surrogates, PostgreSQL's other unstorable case, cannot occur: the JSON decoder rejects a lone
``\ud800`` escape as malformed, and a WebSocket text frame is strict UTF-8."""

_NO_NUL: Final = msgspec.Meta(pattern=STORABLE_TEXT)

# Field types shared by several frames. Every string type carries _NO_NUL.
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64), _NO_NUL]
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
MAX_QUEUE_LENGTH: Final = 1_000_000
"""Largest ``queue_length`` a relay may report (it is stored as a 32-bit integer)."""
QueueLength = Annotated[int, msgspec.Meta(ge=0, le=MAX_QUEUE_LENGTH)]
AppVersion = Annotated[str, msgspec.Meta(min_length=1, max_length=32), _NO_NUL]
Text32 = Annotated[str, msgspec.Meta(max_length=32), _NO_NUL]
Text64 = Annotated[str, msgspec.Meta(max_length=64), _NO_NUL]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=64), _NO_NUL]


class Sim(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One SIM slot of the relay phone, as reported in ``hello``/``heartbeat``."""

    slot: Annotated[int, msgspec.Meta(ge=0, le=3)]
    """Zero-based slot index."""
    carrier: Text64 | None = None
    """Carrier display name, if known."""
    ready: bool
    """True when the SIM can send SMS right now."""


SimList = Annotated[list[Sim], msgspec.Meta(max_length=4)]


class _RelayFrameBase(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=False):
    """Common options of relay → gateway frames: tagged by ``type``, unknown fields ignored.

    Subclasses repeat ``kw_only=True`` because type checkers do not inherit it.
    """


class _GatewayFrameBase(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=False):
    """Common options of gateway → relay frames."""


class Hello(_RelayFrameBase, tag="hello", kw_only=True):
    """First frame of every session: who the relay is and what it holds."""

    protocol: Literal[1]
    """Major protocol version: 1 on both ``relaygate.v1`` and ``relaygate.v1.1``."""
    app_version: AppVersion
    """Version string of the relay app."""
    model: Text64 | None = None
    """Phone model."""
    os_version: Text32 | None = None
    """Android version."""
    sims: SimList
    """SIM slots present in the phone."""
    queue_length: QueueLength
    """Commands the relay holds and has not finished sending."""


class Heartbeat(_RelayFrameBase, tag="heartbeat", kw_only=True):
    """Periodic telemetry; any frame keeps the session alive, this one carries state."""

    battery: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    """Battery level in percent."""
    charging: bool | None = None
    """Whether the phone is plugged in."""
    signal: Annotated[int, msgspec.Meta(ge=0, le=4)] | None = None
    """Cellular signal level, 0 (none) to 4 (full)."""
    network: Literal["wifi", "cellular", "none", "unknown"]
    """Data network the WebSocket runs over."""
    sims: SimList
    """SIM slots present in the phone."""
    app_version: AppVersion | None = None
    """Version of the relay app, if it changed since ``hello``."""
    queue_length: QueueLength
    """Commands the relay holds and has not finished sending."""


class Ack(_RelayFrameBase, tag="ack", kw_only=True):
    """The relay took a ``send`` command and persisted it."""

    id: MessageId
    """Id of the ``send`` command."""


ReportStatus = Literal["sent", "delivered", "failed"]


class Report(_RelayFrameBase, tag="report", kw_only=True):
    """Outcome of one message on the phone; ``reason`` is required when it failed."""

    id: MessageId
    """Id of the ``send`` command, possibly from an earlier session."""
    status: ReportStatus
    """What happened to the message."""
    reason: Reason | None = None
    """Why it failed, e.g. ``radio_off``; required when ``status`` is ``failed``."""
    at: UtcDatetime
    """When it happened on the phone."""
    parts: Annotated[int, msgspec.Meta(ge=1, le=255)] | None = None
    """Number of SMS parts the message was split into."""

    def __post_init__(self) -> None:
        # msgspec turns this ValueError into a ValidationError on decode.
        if self.status == "failed" and self.reason is None:
            raise ValueError("a report with status 'failed' requires a reason")


CancelOutcome = Literal["cancelled", "too_late"]


class CancelResult(_RelayFrameBase, tag="cancel_result", kw_only=True):
    """v1.1: the relay's answer to a ``cancel``. ``cancelled``: the SMS was not and will never be
    sent, and no report follows (the relay keeps this frame in its outbox until a ``report_ack``
    with status ``cancelled``); ``too_late``: sending had started, its reports follow as usual."""

    id: MessageId
    """Id of the ``cancel`` (the message's id)."""
    result: CancelOutcome
    """What the relay did."""
    at: UtcDatetime | None = None
    """When it happened on the phone."""


class Welcome(_GatewayFrameBase, tag="welcome", kw_only=True):
    """The gateway's answer to a valid ``hello``; the session is open."""

    protocol: Literal[1] = 1
    """Protocol version in use."""
    device_id: str
    """Id of the authenticated device (``dev_…``)."""
    heartbeat_interval_seconds: int
    """Seconds between two ``heartbeat`` frames."""
    max_in_flight: int
    """Commands the gateway keeps outstanding at most."""
    max_frame_bytes: int
    """Largest frame the gateway accepts."""
    server_time: UtcDatetime
    """Gateway clock, for the relay to estimate skew."""
    per_minute_limit: int | None = None
    """Dispatches per sliding minute the gateway allows this relay (informative; the gateway
    enforces it). Null from gateways that do not say."""
    per_day_limit: int | None = None
    """Dispatches per sliding 24 h the gateway allows this relay; null: no daily cap."""


class Send(_GatewayFrameBase, tag="send", kw_only=True):
    """Command to send one SMS; the relay acks it and de-duplicates by ``id``."""

    id: MessageId
    """Message id (``req_…``)."""
    to: Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{1,14}$")]
    """Recipient in E.164 form."""
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]
    """Text of the SMS."""
    sim_slot: Annotated[int, msgspec.Meta(ge=0, le=3)] | None = None
    """SIM slot to send from; null lets the relay choose."""
    expires_at: UtcDatetime
    """The relay must not start sending after this instant."""


class Cancel(_GatewayFrameBase, tag="cancel", kw_only=True):
    """v1.1: withdraw a ``send`` the relay took; it answers with ``cancel_result``."""

    id: MessageId
    """Id of the ``send`` command to withdraw."""


class ReportAck(_GatewayFrameBase, tag="report_ack", kw_only=True):
    """The gateway stored a report; the relay may drop it from its outbox."""

    id: MessageId
    """Id of the reported message."""
    status: str
    """Status of the stored report."""


class Error(_GatewayFrameBase, tag="error", kw_only=True):
    """A frame the relay sent was rejected; see ``code``."""

    code: str
    """One of :class:`ErrorCode` (a string, so newer codes decode too)."""
    message: str
    """Human-readable explanation, for logs."""
    ref: str | None = None
    """Id of the offending frame, when it had one."""


RelayFrame = Hello | Heartbeat | Ack | Report | CancelResult
"""Any frame a relay sends."""

GatewayFrame = Welcome | Send | ReportAck | Error | Cancel
"""Any frame the gateway sends."""

_RELAY_TYPES: Final = frozenset({"hello", "heartbeat", "ack", "report", "cancel_result"})
_GATEWAY_TYPES: Final = frozenset({"welcome", "send", "report_ack", "error", "cancel"})
_MAX_ERROR_DETAIL: Final = 200

_relay_decoder: Final[msgspec.json.Decoder[RelayFrame]] = msgspec.json.Decoder(RelayFrame)
_gateway_decoder: Final[msgspec.json.Decoder[GatewayFrame]] = msgspec.json.Decoder(GatewayFrame)
_encoder: Final = msgspec.json.Encoder()


def encode_frame(frame: RelayFrame | GatewayFrame) -> bytes:
    """Encode any frame as the UTF-8 JSON payload of a text frame."""
    return _encoder.encode(frame)


def decode_relay_frame(data: bytes | str) -> RelayFrame:
    """Decode and validate a relay → gateway frame.

    Raises :class:`~protocol.exceptions.InvalidFrame` with the error code the
    gateway must answer with.
    """
    try:
        return _relay_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _classify(data, exc, _RELAY_TYPES) from exc


def decode_gateway_frame(data: bytes | str) -> GatewayFrame:
    """Decode and validate a gateway → relay frame (used by simulated relays).

    Raises :class:`~protocol.exceptions.InvalidFrame` like
    :func:`decode_relay_frame`.
    """
    try:
        return _gateway_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _classify(data, exc, _GATEWAY_TYPES) from exc


def _shorten(text: str) -> str:
    """Cap a detail copied from untrusted input so error frames stay small."""
    if len(text) <= _MAX_ERROR_DETAIL:
        return text
    return text[: _MAX_ERROR_DETAIL - 1] + "…"


def _classify(data: bytes | str, exc: Exception, known_types: frozenset[str]) -> InvalidFrame:
    """Tell why a frame failed the typed decoder, by re-reading it untyped.

    Only runs on the error path, so the second parse costs nothing on valid
    traffic.
    """
    try:
        obj: Any = msgspec.json.decode(data)
    except RecursionError:
        return InvalidFrame(ErrorCode.MALFORMED_FRAME, "frame is nested too deeply")
    except (msgspec.DecodeError, UnicodeError) as parse_exc:
        return InvalidFrame(ErrorCode.MALFORMED_FRAME, _shorten(f"frame is not valid JSON: {parse_exc}"))
    if not isinstance(obj, dict):
        return InvalidFrame(
            ErrorCode.MALFORMED_FRAME, f"frame must be a JSON object, got {type(obj).__name__}"
        )
    raw_id = obj.get("id")
    ref = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 64 else None
    if "type" not in obj:
        return InvalidFrame(ErrorCode.UNKNOWN_TYPE, "frame has no 'type' field", ref)
    frame_type = obj["type"]
    if not isinstance(frame_type, str) or frame_type not in known_types:
        expected = ", ".join(sorted(known_types))
        return InvalidFrame(
            ErrorCode.UNKNOWN_TYPE,
            _shorten(f"unknown frame type {frame_type!r}; expected one of {expected}"),
            ref,
        )
    detail = str(exc).replace(f"matching regex {STORABLE_TEXT!r}", "without U+0000 (NUL)")
    return InvalidFrame(ErrorCode.INVALID_FIELD, _shorten(f"invalid {frame_type} frame: {detail}"), ref)
