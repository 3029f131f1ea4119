"""One open relay WebSocket: the device, the sans-I/O session, and the one task that writes.

:class:`RelayConnection` is the WebSocket kind of :class:`~gateway.fleet.link.RelayLink`. Every
frame for the relay — the listener's ``welcome``, ``ack``-related answers and ``report_ack``\\ s,
the dispatch loop's ``send`` frames, the cancels — is queued in the session (no I/O), and
:meth:`RelayConnection.flush` only wakes the connection's writer task, which drains the
session in order and, at the end, sends the close frame. So exactly one task writes to each
socket, frames keep the order in which the session queued them, and a relay that reads slowly
delays only its own writer, never the dispatch loop.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.clock import Clock
from gateway.fleet.devices import DeviceRecord, LiveTelemetry
from gateway.fleet.link import CancelOutcome
from gateway.logs import get_logger
from protocol import CloseCode, RelaySession, SessionState

__all__ = ["CLOSE_TIMEOUT", "RelayConnection", "close_connection"]

log = get_logger("gateway.fleet")

CLOSE_TIMEOUT = 3.0
"""Seconds a close may take (the queued frames, then the close frame) before the TCP
connection is aborted."""


class RelayConnection:
    """One open relay socket: the device, the sans-I/O session and the socket adapter."""

    __slots__ = ("_closing", "_outgoing", "_writer", "connected_at", "device", "session", "telemetry", "ws")

    def __init__(
        self,
        device: DeviceRecord,
        ws: ServerConnection,
        session: RelaySession,
        telemetry: LiveTelemetry,
        *,
        clock: Clock,
    ) -> None:
        self.device = device
        self.ws = ws
        self.session = session
        self.telemetry = telemetry
        self.connected_at = clock.time()
        self._outgoing = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task (the listener does, once per connection)."""
        self._writer = asyncio.get_running_loop().create_task(self._write(), name="relay.writer")

    async def flush(self) -> None:
        """Have the writer send every frame the session queued (returns at once)."""
        self._outgoing.set()

    async def _write(self) -> None:
        """The writer: drain the session whenever woken; after a close, the close frame."""
        ws = self.ws
        try:
            while True:
                await self._outgoing.wait()
                self._outgoing.clear()
                for data in self.session.data_to_send():
                    await ws.send(data, text=True)
                if self._closing:
                    code = self.session.close_code or CloseCode.NORMAL
                    await ws.close(int(code), self.session.close_reason[:120])
                    return
        except ConnectionClosed:
            pass  # the listener's receive notices and ends the session

    @property
    def is_open(self) -> bool:
        """Past hello and not closing: ``send`` frames may go out."""
        return self.session.state is SessionState.OPEN

    def send_message(
        self, *, id: str, to: str, message: str, sim_slot: int | None, expires_at: datetime
    ) -> None:
        """Queue a ``send`` frame (written by :meth:`flush`)."""
        self.session.send_message(id=id, to=to, message=message, sim_slot=sim_slot, expires_at=expires_at)

    @property
    def can_cancel(self) -> bool:
        """The session runs protocol v1.1 or later (v1 has no ``cancel`` frame)."""
        return self.session.can_cancel

    def cancel(self, message_id: str) -> CancelOutcome:
        """Queue a ``cancel`` frame (written by :meth:`flush`); the relay's ``cancel_result``
        follows."""
        self.session.send_cancel(message_id)
        return "requested"

    async def close(self, code: CloseCode, reason: str) -> None:
        """Close the socket with ``code``."""
        self.session.close(code, reason)
        await close_connection(self)

    def stop(self) -> None:
        """The session is over (the listener's last step): end the writer if it still waits."""
        writer = self._writer
        if writer is None:
            return
        if not writer.done():
            writer.cancel()
        elif not writer.cancelled() and writer.exception() is not None:
            log.warning("relay.writer_failed", device_id=self.device.id, error=repr(writer.exception()))

    async def closed(self) -> None:
        """Tell the writer to send what is queued and the close frame; wait for it (at most
        ``CLOSE_TIMEOUT`` seconds: a peer that stopped reading would make it wait for a drain
        that never comes, so the TCP connection is aborted instead)."""
        self._closing = True
        self._outgoing.set()
        writer = self._writer
        if writer is None:
            self.start()
            writer = self._writer
        assert writer is not None
        done, _ = await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        if not done:
            self.ws.transport.abort()
            writer.cancel()
        elif not writer.cancelled() and writer.exception() is not None:
            log.warning("relay.writer_failed", device_id=self.device.id, error=repr(writer.exception()))
            self.ws.transport.abort()


async def close_connection(conn: RelayConnection) -> None:
    """Send what the session queued and close with its code, never blocking for long."""
    await conn.closed()
