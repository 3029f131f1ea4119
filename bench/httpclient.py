"""A small keep-alive HTTP/1.1 client pool on bare asyncio protocols, cheap enough to drive
thousands of requests per second from one core (aiohttp spends several times more per request).

Only what the benchmark needs: one request at a time per connection, ``Content-Length``
bodies (what uvicorn sends for these JSON answers), no redirects, no TLS.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

__all__ = ["HttpPool", "HttpResponse"]


class HttpResponse:
    """Status and raw body of one answer."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class _Conn(asyncio.Protocol):
    """One keep-alive connection; ``request`` writes, the future gets the response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        length = 0
        keep_alive = True
        lines = head.split("\r\n")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname == "content-length":
                length = int(value)
            elif lname == "connection" and value.strip().lower() == "close":
                keep_alive = False
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        status = int(lines[0].split(" ", 2)[1])
        if not keep_alive:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(HttpResponse(status, body))


class HttpPool:
    """Up to ``size`` keep-alive connections to one host; requests wait for a free one."""

    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self._idle: deque[_Conn] = deque()
        self._open = 0
        self._slots = asyncio.Semaphore(size)

    async def request(self, method: str, path: str, body: bytes = b"", timeout: float = 30.0) -> HttpResponse:
        """Send one request and return its answer (raises OSError/TimeoutError/ConnectionError)."""
        async with self._slots:
            conn = await self._take()
            head = f"{method} {path} HTTP/1.1\r\n{self._fixed}Content-Length: {len(body)}\r\n"
            if body:
                head += "Content-Type: application/json\r\n"
            loop = asyncio.get_running_loop()
            conn.waiter = loop.create_future()
            assert conn.transport is not None
            conn.transport.write(head.encode() + b"\r\n" + body)
            try:
                response = await asyncio.wait_for(conn.waiter, timeout)
            except BaseException:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.abort()
                self._open -= 1
                raise
            conn.waiter = None
            if conn.closed:
                self._open -= 1
            else:
                self._idle.append(conn)
            return response

    async def _take(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._open -= 1
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        self._open += 1
        return conn

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()
