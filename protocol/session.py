"""The gateway side of one relay connection, as a sans-I/O state machine.

A :class:`RelaySession` never touches a socket or a clock. The asyncio
adapter in ``gateway/`` drives it:

1. feed every received WebSocket message to :meth:`RelaySession.receive_frame`
   (``str`` for a text frame, ``bytes`` for a binary one) with the current time;
2. drain :meth:`~RelaySession.events_received` and act on each event;
3. drain :meth:`~RelaySession.data_to_send` and write each item as a text frame;
4. if :attr:`~RelaySession.close_code` is set, close the socket with it and
   :attr:`~RelaySession.close_reason` (after writing the drained frames);
5. sleep until :meth:`~RelaySession.next_deadline` or the next message,
   whichever is first, and call :meth:`~RelaySession.check_timeouts`.

States::

    AWAITING_HELLO --valid hello--> OPEN --close decided--> CLOSING
          |                                                    ^
          +---any rejected frame / timeout / close()-----------+

In ``AWAITING_HELLO`` the first frame must be a valid ``hello``; anything else
is answered with an ``error`` frame and closes the session with 1008. In
``OPEN`` a rejected frame gets an ``error`` frame and the session stays open,
until ``max_errors`` errors have been sent; then it closes with 1008. In
``CLOSING`` received frames are ignored.

All times are ``float`` seconds since the Unix epoch (``time.time()``): the
``welcome`` frame's ``server_time`` is derived from them.

A session runs under the version negotiated on the upgrade (:mod:`protocol.versions`): frames
of a later version are refused from the relay (``unknown_type``) and never sent to it
(:class:`ProtocolStateError`).
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from typing import Final

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
from protocol.exceptions import InvalidFrame, ProtocolStateError
from protocol.frames import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_IN_FLIGHT,
    MAX_FRAME_BYTES,
    Ack,
    Cancel,
    CancelResult,
    Error,
    Heartbeat,
    Hello,
    RelayFrame,
    Report,
    ReportAck,
    Send,
    Welcome,
    decode_relay_frame,
    encode_frame,
)
from protocol.versions import CANCEL_SINCE, ProtocolVersion

__all__ = ["RelaySession", "SessionState"]

_HEARTBEAT_TIMEOUT_FACTOR: Final = 2.5
# Acked ids are remembered only to recognise duplicate acks; a bound keeps a
# session that lives for weeks from growing without limit. A duplicate ack
# older than this many acks is answered with unknown_id, which is harmless.
_ACKED_IDS_KEPT: Final = 10_000


FRAMES_PER_COMMAND = 3
"""Frames a relay may send per ``send`` command without touching its flood budget."""
MAX_CREDIT = 300_000
"""Upper bound of unspent command credit (memory and sanity)."""


class SessionState(enum.Enum):
    """Where a :class:`RelaySession` is in its life."""

    AWAITING_HELLO = "awaiting_hello"
    """Connected; the relay's first frame must be ``hello``."""
    OPEN = "open"
    """``welcome`` was sent; commands, acks, reports and heartbeats flow."""
    CLOSING = "closing"
    """A close was decided; the adapter must close the socket with ``close_code``."""


class RelaySession:
    """Protocol state of one relay WebSocket connection, seen from the gateway.

    The constructor has no side effects. Limits are per session; the
    in-flight window (``max_in_flight``) is announced in ``welcome`` but
    enforced by the scheduler, which also counts unreported commands.
    """

    def __init__(
        self,
        *,
        device_id: str,
        now: float,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_timeout: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        per_minute_limit: int | None = None,
        per_day_limit: int | None = None,
        flood_rate: float = 50,
        flood_burst: int = 200,
        max_errors: int = 10,
        version: ProtocolVersion = ProtocolVersion.V1,
    ) -> None:
        if heartbeat_timeout is None:
            heartbeat_timeout = _HEARTBEAT_TIMEOUT_FACTOR * heartbeat_interval
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
        if max_in_flight < 1 or flood_rate <= 0 or flood_burst < 1 or max_errors < 1:
            raise ValueError("max_in_flight, flood_rate, flood_burst and max_errors must be positive")
        self._device_id = device_id
        self._version = version
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._max_in_flight = max_in_flight
        self._rate_limits = (per_minute_limit, per_day_limit)  # only announced in welcome
        self._flood_rate = flood_rate
        self._flood_burst = flood_burst
        self._max_errors = max_errors

        self._state = SessionState.AWAITING_HELLO
        self._last_frame_at = now
        self._tokens = float(flood_burst)
        self._tokens_at = now
        self._credit = 0  # frames earned by commands sent (see send_message)
        self._error_count = 0
        self._unacked: set[str] = set()
        self._acked: dict[str, None] = {}  # insertion-ordered, bounded by _ACKED_IDS_KEPT
        self._events: list[Event] = []
        self._outgoing: list[bytes] = []
        self._close_code: CloseCode | None = None
        self._close_reason = ""

    # -- read-only state -------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Current state; ``CLOSING`` as soon as a close was decided."""
        return self._state

    @property
    def version(self) -> ProtocolVersion:
        """The protocol version negotiated for this connection."""
        return self._version

    @property
    def can_cancel(self) -> bool:
        """Whether the relay speaks ``cancel`` (v1.1 and later)."""
        return self._version >= CANCEL_SINCE

    @property
    def device_id(self) -> str:
        """Id of the device this connection authenticated as."""
        return self._device_id

    @property
    def max_in_flight(self) -> int:
        """In-flight window announced to the relay in ``welcome``."""
        return self._max_in_flight

    @property
    def heartbeat_timeout(self) -> float:
        """Seconds of silence after which the relay is declared offline."""
        return self._heartbeat_timeout

    @property
    def close_code(self) -> CloseCode | None:
        """Code to close the socket with, once the session decided to close."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """Short reason for the close frame (empty until a close is decided)."""
        return self._close_reason

    @property
    def error_count(self) -> int:
        """``error`` frames sent so far in this session."""
        return self._error_count

    @property
    def unacked(self) -> frozenset[str]:
        """Ids sent in this session with :meth:`send_message` and not acked yet.

        Still readable after the close, so the adapter can requeue them.
        """
        return frozenset(self._unacked)

    # -- input -------------------------------------------------------------

    def receive_frame(self, data: str | bytes, now: float) -> None:
        """Process one received WebSocket message.

        ``str`` is a text frame, ``bytes`` a binary frame (always rejected).
        Never raises for anything the relay sends; rejections become
        ``error`` frames, :class:`~protocol.events.ProtocolViolation` events
        and possibly a close.
        """
        if self._state is SessionState.CLOSING:
            return
        # Any frame, even an invalid one, proves the relay is alive.
        self._last_frame_at = max(self._last_frame_at, now)
        if not self._take_flood_token(now):
            self._reject(
                ErrorCode.TOO_MANY_FRAMES,
                f"more than {self._flood_rate:g} frames/s (burst {self._flood_burst})",
                close=CloseCode.TOO_MANY_FRAMES,
            )
            return
        if _exceeds_max_frame(data):
            message = f"frame larger than {MAX_FRAME_BYTES} bytes"
            self._events.append(ProtocolViolation("frame_too_big", message))
            self._begin_close(CloseCode.MESSAGE_TOO_BIG, message)
            return
        if isinstance(data, bytes):
            self._reject(ErrorCode.MALFORMED_FRAME, "binary frames are not allowed; send JSON text frames")
            return
        try:
            frame = decode_relay_frame(data)
        except InvalidFrame as exc:
            self._reject(exc.code, exc.message, exc.ref)
            return
        self._dispatch(frame, now)

    def _dispatch(self, frame: RelayFrame, now: float) -> None:
        """Apply the state rules to a decoded, valid frame."""
        if isinstance(frame, Hello):
            if self._state is SessionState.OPEN:
                self._reject(ErrorCode.OUT_OF_ORDER, "hello was already received in this session")
            else:
                self._open(frame, now)
            return
        if self._state is SessionState.AWAITING_HELLO:
            ref = frame.id if isinstance(frame, Ack | Report | CancelResult) else None
            tag = frame.__struct_config__.tag
            self._reject(ErrorCode.OUT_OF_ORDER, f"{tag} before hello; the first frame must be hello", ref)
            return
        match frame:
            case Heartbeat():
                self._events.append(HeartbeatReceived(frame))
            case Ack(id=command_id):
                if command_id in self._unacked:
                    self._mark_acked(command_id)
                elif command_id not in self._acked:
                    self._reject(
                        ErrorCode.UNKNOWN_ID, "ack for a command not sent in this session", command_id
                    )
                # else: a duplicate ack, harmless by contract.
            case Report(id=command_id):
                # A report proves the relay took the command even if its ack
                # never came; reports for ids of earlier sessions are normal.
                if command_id in self._unacked:
                    self._mark_acked(command_id)
                self._events.append(ReportReceived(frame))
            case CancelResult(id=command_id):
                if not self.can_cancel:
                    self._reject(
                        ErrorCode.UNKNOWN_TYPE,
                        f"cancel_result needs {CANCEL_SINCE.subprotocol}; this session runs "
                        f"{self._version.subprotocol}",
                        command_id,
                    )
                    return
                if command_id in self._unacked:
                    self._mark_acked(command_id)  # it took the command to be able to cancel it
                self._events.append(CancelResultReceived(frame))

    def _open(self, hello: Hello, now: float) -> None:
        """Accept the hello: move to OPEN, queue ``welcome``, emit the event."""
        self._state = SessionState.OPEN
        welcome = Welcome(
            device_id=self._device_id,
            heartbeat_interval_seconds=max(1, round(self._heartbeat_interval)),
            max_in_flight=self._max_in_flight,
            max_frame_bytes=MAX_FRAME_BYTES,
            server_time=datetime.fromtimestamp(now, UTC),
            per_minute_limit=self._rate_limits[0],
            per_day_limit=self._rate_limits[1],
        )
        self._outgoing.append(encode_frame(welcome))
        self._events.append(HelloReceived(hello))

    def _mark_acked(self, command_id: str) -> None:
        """Move an id from unacked to acked and emit :class:`CommandAcked`."""
        self._unacked.discard(command_id)
        self._acked[command_id] = None
        if len(self._acked) > _ACKED_IDS_KEPT:
            del self._acked[next(iter(self._acked))]
        self._events.append(CommandAcked(command_id))

    def _take_flood_token(self, now: float) -> bool:
        """Spend command credit first, else the token bucket (refilled at ``flood_rate``/s up
        to ``flood_burst``)."""
        if self._credit > 0:
            self._credit -= 1
            return True
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(float(self._flood_burst), self._tokens + elapsed * self._flood_rate)
        self._tokens_at = max(self._tokens_at, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _reject(
        self, code: ErrorCode, message: str, ref: str | None = None, *, close: CloseCode | None = None
    ) -> None:
        """Send an ``error`` frame, emit a violation, and close if the rules say so."""
        self._outgoing.append(encode_frame(Error(code=code, message=message, ref=ref)))
        self._events.append(ProtocolViolation(code.value, message))
        self._error_count += 1
        if close is not None:
            self._begin_close(close, code.value)
        elif self._state is SessionState.AWAITING_HELLO:
            self._begin_close(CloseCode.PROTOCOL_VIOLATION, f"{code.value} before hello")
        elif self._error_count >= self._max_errors:
            self._begin_close(CloseCode.PROTOCOL_VIOLATION, f"{self._error_count} protocol errors")

    def _begin_close(self, code: CloseCode, reason: str) -> None:
        """Record the close decision; the adapter performs it."""
        self._state = SessionState.CLOSING
        self._close_code = code
        self._close_reason = reason

    # -- output ------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Return and forget the events produced since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Return and forget the encoded frames to write, in order, as text frames."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- commands from the gateway ----------------------------------------

    def send_message(
        self, *, id: str, to: str, message: str, sim_slot: int | None, expires_at: datetime
    ) -> None:
        """Queue a ``send`` command and track ``id`` as unacked.

        Sending an id again (a retransmission) is allowed and makes it unacked
        again. Raises :class:`ProtocolStateError` unless the session is OPEN,
        and :class:`ValueError` for an id outside 1..64 characters or a naive
        ``expires_at``.
        """
        if self._state is not SessionState.OPEN:
            raise ProtocolStateError(f"cannot send a command in state {self._state.name}")
        if not 1 <= len(id) <= 64:
            raise ValueError("message id must be 1..64 characters")
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        send = Send(id=id, to=to, message=message, sim_slot=sim_slot, expires_at=expires_at)
        self._outgoing.append(encode_frame(send))
        self._acked.pop(id, None)
        self._unacked.add(id)
        # An honest relay answers a command with up to three frames (ack, sent, delivered):
        # they never count against the flood limit, however fast the relay is allowed to send.
        self._credit = min(self._credit + FRAMES_PER_COMMAND, MAX_CREDIT)

    def send_cancel(self, id: str) -> None:
        """Queue a ``cancel`` for a message sent to this relay (in this session or an earlier one).

        Raises :class:`ProtocolStateError` unless the session is OPEN and runs v1.1 or later
        (:attr:`can_cancel`): a v1 relay is never sent a frame it does not know."""
        if self._state is not SessionState.OPEN:
            raise ProtocolStateError(f"cannot send a command in state {self._state.name}")
        if not self.can_cancel:
            raise ProtocolStateError(
                f"cancel needs {CANCEL_SINCE.subprotocol}, not {self._version.subprotocol}"
            )
        if not 1 <= len(id) <= 64:
            raise ValueError("message id must be 1..64 characters")
        self._outgoing.append(encode_frame(Cancel(id=id)))
        # The relay answers with one cancel_result: it never counts against the flood limit.
        self._credit = min(self._credit + 1, MAX_CREDIT)

    def ack_report(self, id: str, status: str) -> None:
        """Queue a ``report_ack`` once the gateway has durably stored a report.

        A no-op once CLOSING: the relay keeps the report and re-sends it after
        reconnecting. Raises :class:`ProtocolStateError` before ``hello``.
        """
        if self._state is SessionState.CLOSING:
            return
        if self._state is SessionState.AWAITING_HELLO:
            raise ProtocolStateError("no report can have been received before hello")
        self._outgoing.append(encode_frame(ReportAck(id=id, status=status)))

    def refuse_report(self, id: str, message: str) -> None:
        """Answer a valid-looking report the gateway could not store because the database refused
        its content: an ``error`` frame ``invalid_field`` with ``ref`` = ``id`` instead of a
        ``report_ack``. It counts toward ``max_errors`` like any rejected frame. A no-op once
        CLOSING."""
        if self._state is SessionState.CLOSING:
            return
        if self._state is SessionState.AWAITING_HELLO:
            raise ProtocolStateError("no report can have been received before hello")
        self._reject(ErrorCode.INVALID_FIELD, message, id)

    def close(self, code: CloseCode, reason: str) -> None:
        """Decide a gateway-initiated close (replaced, unpaired, shutdown).

        Has no effect if a close was already decided: the first reason wins.
        """
        if self._state is not SessionState.CLOSING:
            self._begin_close(code, reason)

    # -- time --------------------------------------------------------------

    def next_deadline(self) -> float:
        """Time at which :meth:`check_timeouts` must run next (``inf`` once CLOSING)."""
        if self._state is SessionState.CLOSING:
            return math.inf
        return self._last_frame_at + self._heartbeat_timeout

    def check_timeouts(self, now: float) -> None:
        """Declare the relay offline if it has been silent for ``heartbeat_timeout``."""
        if self._state is SessionState.CLOSING or now < self.next_deadline():
            return
        self._events.append(HeartbeatTimedOut())
        self._begin_close(CloseCode.HEARTBEAT_TIMEOUT, f"no frame for {self._heartbeat_timeout:g} s")


def _exceeds_max_frame(data: str | bytes) -> bool:
    """Whether a frame is over :data:`MAX_FRAME_BYTES` on the wire."""
    if isinstance(data, bytes):
        return len(data) > MAX_FRAME_BYTES
    if len(data) * 4 <= MAX_FRAME_BYTES:
        return False  # a character is at most 4 bytes of UTF-8; skip encoding
    return len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
