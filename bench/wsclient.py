"""A minimal WebSocket client (RFC 6455) as a bare ``asyncio.Protocol``, for tens of thousands of sockets.

The simulated relays of :mod:`bench.relayfleet` need one socket each and almost nothing else;
a full client library costs tens of KiB and a task per connection. This one is a buffer and a
few attributes: it sends the upgrade, checks the ``101`` and ``Sec-WebSocket-Accept``, masks
what it sends (with websockets' C ``apply_mask``), answers pings, and hands complete text
frames to a callback. Fragmented server messages are reassembled; extensions are never offered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import struct
from collections.abc import Callable
from typing import cast

from websockets.speedups import apply_mask

__all__ = ["WsClient"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_rand = random.Random()


def _frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = _rand.getrandbits(32).to_bytes(4, "big")
    return head + mask + apply_mask(payload, mask)


class WsClient(asyncio.Protocol):
    """One client connection. ``opened`` resolves True on ``101``, False on refusal/loss."""

    __slots__ = (
        "_buf",
        "_fragments",
        "_headers",
        "_key",
        "_on_close",
        "_on_text",
        "close_code",
        "opened",
        "path",
        "transport",
    )

    def __init__(
        self,
        path: str,
        headers: list[tuple[str, str]],
        on_text: Callable[[bytes], None],
        on_close: Callable[[WsClient], None],
    ) -> None:
        self.path = path
        self._headers = headers
        self._on_text = on_text
        self._on_close = on_close
        self._buf = bytearray()
        self._fragments: bytearray | None = None
        self._key = base64.b64encode(os.urandom(16))
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        host, port = transport.get_extra_info("peername")[:2]
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in self._headers),
        ]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self.opened.done():
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            if not self._handshake_ok(head):
                self.opened.set_result(False)
                self.abort()
                return
            self.opened.set_result(True)
        self._parse_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)
        self.transport = None
        self._on_close(self)

    # --- frames ----------------------------------------------------------------------------

    def _handshake_ok(self, head: str) -> bool:
        status, *headers = head.split("\r\n")
        if not status.startswith("HTTP/1.1 101"):
            return False
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        return any(
            h.partition(":")[0].strip().lower() == "sec-websocket-accept"
            and h.partition(":")[2].strip() == expected
            for h in headers
        )

    def _parse_frames(self) -> None:
        buf = self._buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            offset = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                offset = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                offset = 10
            if len(buf) < offset + n:
                return
            payload = bytes(buf[offset : offset + n])
            del buf[: offset + n]
            self._on_frame(b0 & 0x80 != 0, b0 & 0x0F, payload)

    def _on_frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:  # ping
            self._write(_frame(0xA, payload))
        elif opcode == 0x8:  # close: echo the code, then the server closes TCP
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self._write(_frame(0x8, payload[:2]))
        elif opcode in (0x1, 0x2):
            if fin:
                self._on_text(payload)
            else:
                self._fragments = bytearray(payload)
        elif opcode == 0x0 and self._fragments is not None:
            self._fragments += payload
            if fin:
                whole, self._fragments = bytes(self._fragments), None
                self._on_text(whole)

    # --- sending ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_text(self, payload: bytes) -> bool:
        """Send one text frame; False when the socket is gone."""
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(_frame(0x1, payload))
        return True

    def close(self, code: int = 1000) -> None:
        """Start a normal close (the server answers and ends TCP)."""
        self._write(_frame(0x8, struct.pack("!H", code)))

    def abort(self) -> None:
        """Drop the socket without a close frame (a phone losing its network)."""
        if self.transport is not None:
            self.transport.abort()
