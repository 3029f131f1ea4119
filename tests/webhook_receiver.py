"""A real HTTP receiver for webhook tests (aiohttp on a free port) with scripted answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Received", "Receiver"]


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Records every request; ``script[path]`` decides each answer (default 200)."""

    script: dict[str, Callable[[int], Any]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/hook") -> str:
        """Where to point a webhook."""
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        """Requests received on ``path``."""
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        """Until ``count`` requests arrived on ``path``."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.on(path)) >= count)
        return self.on(path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(request.path, dict(request.headers), body, time.monotonic())
        self.requests.append(received)
        async with self._arrived:
            self._arrived.notify_all()
        action = self.script.get(request.path)
        if action is None:
            return web.Response(text="ok")
        result = action(len(self.on(request.path)))
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result
