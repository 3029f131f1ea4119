"""The webhook receiver: a real HTTP endpoint (aiohttp) on 127.0.0.1 that notes when each
``message.*`` event arrives (one per request, or a batch of them), by request id, on the
shared monotonic clock."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from bench.sysstat import free_port

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """Answers 200 to every POST; ``arrivals[(type, request_id)]`` is the first arrival time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[tuple[str, str], float] = {}
        self.received = 0
        self.duplicates = 0
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()
        self._wanted = 0

    @property
    def url(self) -> str:
        """Where the gateway posts."""
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        """Listen."""
        app = web.Application()
        app.router.add_post("/hooks", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Until ``count`` distinct events arrived (True) or ``timeout`` passed (False)."""
        self._wanted = count
        self._arrived.clear()
        if len(self.arrivals) >= count:
            return True
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def reset(self) -> None:
        """Forget what arrived so far."""
        self.arrivals = {}
        self.received = 0
        self.duplicates = 0

    async def _hook(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        try:
            body = json.loads(await request.read())
            events = body["data"]["events"] if body["type"] == "batch" else [body]
            keys = [(str(e["type"]), str(e["data"]["request_id"])) for e in events]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=200)
        for key in keys:
            self.received += 1
            if key in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[key] = now
        if len(self.arrivals) >= self._wanted:
            self._arrived.set()
        return web.Response(status=200)
