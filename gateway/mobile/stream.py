"""The ``GET /events`` response: Server-Sent Events to one SMSGate phone.

A plain ASGI response (not Starlette's ``StreamingResponse``): it watches the client's
``http.disconnect`` itself, so a phone that goes away frees its slot at once rather than at the
next write, and it writes a ``:keepalive`` comment whenever ``keepalive`` seconds pass without
an event. The headers keep proxies from buffering or transforming the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.mobile.link import PhoneStream

__all__ = ["EventStreamResponse"]

KEEPALIVE = b":keepalive\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store, no-transform"),
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse(Response):
    """Streams ``stream``'s frames until it ends or the client leaves; then ``on_close``."""

    def __init__(self, stream: PhoneStream, keepalive: float, on_close: Callable[[], None]) -> None:
        super().__init__(status_code=200)
        self._stream = stream
        self._keepalive = keepalive
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self._stream
        watcher = asyncio.get_running_loop().create_task(
            _end_on_disconnect(receive, stream), name="mobile.sse-disconnect"
        )
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": b":connected\n\n", "more_body": True})
            while not stream.ended:
                try:
                    async with asyncio.timeout(self._keepalive):
                        frame = await stream.next_frame()
                except TimeoutError:
                    frame = KEEPALIVE
                if frame is None:
                    break
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            self._on_close()


async def _end_on_disconnect(receive: Receive, stream: PhoneStream) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.end()
            return
