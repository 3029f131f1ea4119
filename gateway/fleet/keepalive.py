"""WebSocket ping/pong for every relay socket, from one task.

websockets can ping each connection from a task of its own; with tens of thousands of idle
relays those tasks and their timers are ~1.4 KiB a socket, so the listener turns them off and
this sweeper does the same work: every socket gets a ping once per ``interval``, spread evenly
over the interval (a slice per tick, never one burst), and a socket whose previous ping is
still unanswered when its turn comes again is aborted — at most two intervals after it went
silent, as with websockets' own ``ping_timeout`` equal to the interval. The relay protocol's
heartbeat timeout (``docs/protocol.md``) is a separate check on the same sockets.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.logs import get_logger

__all__ = ["Keepalive"]

log = get_logger("gateway.fleet")

TICK = 1.0
"""Seconds between slices."""


class Keepalive:
    """Pings the sockets it is given; aborts those that stop answering."""

    def __init__(self, *, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self._sockets: dict[ServerConnection, None] = {}
        """Open sockets in the order they opened (a dict: ordered, O(1) removal)."""
        self._unanswered: dict[ServerConnection, Awaitable[float]] = {}
        """Sockets pinged whose pong has not come back yet."""

    def watch(self, ws: ServerConnection) -> None:
        """Ping ``ws`` from now on."""
        self._sockets[ws] = None

    def forget(self, ws: ServerConnection) -> None:
        """``ws`` closed."""
        self._sockets.pop(ws, None)
        self._unanswered.pop(ws, None)

    @property
    def watched(self) -> int:
        """Sockets being pinged."""
        return len(self._sockets)

    async def run(self) -> None:
        """Background task ``relay.keepalive``: one round per ``interval``, one slice per tick."""
        ticks = max(1, round(self._interval / TICK))
        while True:
            round_ = list(self._sockets)
            per_tick = math.ceil(len(round_) / ticks) if round_ else 0
            for tick in range(ticks):
                for ws in round_[tick * per_tick : (tick + 1) * per_tick]:
                    if ws in self._sockets:
                        await self._visit(ws)
                await asyncio.sleep(self._interval / ticks)

    async def _visit(self, ws: ServerConnection) -> None:
        waiter = self._unanswered.pop(ws, None)
        if waiter is not None and not _done(waiter):
            log.info("relay.ping_timeout", remote=str(ws.remote_address))
            ws.transport.abort()  # the listener's recv() ends: the relay goes offline as on a reset
            return
        try:
            pong = await ws.ping()
        except ConnectionClosed:
            return
        self._unanswered[ws] = pong
        if isinstance(pong, asyncio.Future):
            pong.add_done_callback(lambda _: self._answered(ws, pong))

    def _answered(self, ws: ServerConnection, pong: Awaitable[float]) -> None:
        if self._unanswered.get(ws) is pong:
            del self._unanswered[ws]


def _done(waiter: Awaitable[float]) -> bool:
    return not isinstance(waiter, asyncio.Future) or waiter.done()
