"""Live pages: the account's outbox events as Server-Sent Events (``GET /events``).

Every change a customer can hear about — ``message.sent/delivered/failed``, ``device.online/
offline``, ``otp.verified``, ``webhook.test`` — is already an ``events`` row written in the
transaction that made it, and the ``events_notify`` trigger NOTIFYs ``relaygate_events`` on
commit. :class:`LiveFeed` (background task ``dashboard.live``) LISTENs on its own connection
and wakes every open stream; each stream then reads its account's events after the last id it
sent (:func:`store.dashboard.events_since`) and writes them as ``id:``/``data:`` lines. Nothing polls:
a stream sleeps until a NOTIFY (or, as a safety net, every :data:`SAFETY_WAKE` seconds, when it
also re-checks the session and sends a keep-alive comment).

A page asks for the events after the moment it was rendered (``?since=``, an id floor), so
nothing between rendering and connecting is missed. The browser's ``EventSource`` reconnects
by itself after a restart of the gateway and sends ``Last-Event-ID``, so the stream resumes
after the last event the page saw. Pages use events
only as triggers to re-render a fragment from the API's handlers, so a page always shows the
stored state, never a state rebuilt from events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.dashboard.sessions import signed_in
from gateway.ids import has_prefix, id_floor
from gateway.logs import get_logger
from gateway.services import Services
from store.dashboard import LiveEventRow, events_since
from store.database import CONNECT_TIMEOUT, DATABASE_DOWN, connect

__all__ = ["LiveFeed", "event_stream"]

log = get_logger("gateway.dashboard")

SAFETY_WAKE = 15.0
"""Seconds between keep-alives of an idle stream, and between re-checks of its session (so a
signed-out or revoked session stops receiving events within this time)."""
RETRY_MS = 2000
"""The ``retry:`` a stream announces: how soon a browser reconnects after losing it."""
BATCH = 500
_encode = msgspec.json.Encoder().encode
_LISTEN_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.PostgresError)


class LiveFeed:
    """Wakes open event streams when events are committed (in any gateway process)."""

    def __init__(self) -> None:
        self._tick = asyncio.Event()
        self.closing = False
        self.streams = 0
        """Open event streams (for tests and logs)."""

    def wake(self) -> None:
        """New events may exist: every waiting stream looks."""
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def close(self) -> None:
        """Shutdown step 2: end every stream, so in-flight HTTP requests can finish."""
        self.closing = True
        self.wake()

    @property
    def tick(self) -> asyncio.Event:
        """Set by the next wake; take it before reading, then :meth:`wait` on it."""
        return self._tick

    async def wait(self, tick: asyncio.Event, timeout: float) -> bool:
        """Until ``tick`` is set (True) or ``timeout`` (False)."""
        try:
            async with asyncio.timeout(timeout):
                await tick.wait()
        except TimeoutError:
            return False
        return True

    async def run(self, database_url: str) -> None:
        """Background task ``dashboard.live``: LISTEN, reopened whenever the connection is lost."""
        while True:
            lost = asyncio.Event()
            try:
                listener = await connect(database_url, timeout=CONNECT_TIMEOUT)
            except _LISTEN_ERRORS as exc:
                log.warning("dashboard.listen_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            try:
                await listener.add_listener("relaygate_events", lambda *_: self.wake())
                listener.add_termination_listener(lambda _, lost=lost: lost.set())
                self.wake()  # what was committed while not listening
                await lost.wait()
                log.warning("dashboard.listen_lost")
            except _LISTEN_ERRORS as exc:
                log.warning("dashboard.listen_failed", error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    listener.terminate()


def _frame(row: LiveEventRow) -> str:
    data = _encode({"type": row.type, "data": msgspec.Raw(row.data)}).decode()
    return f"id: {row.id}\ndata: {data}\n\n"


async def event_stream(request: Request) -> Response:
    """``GET /events``: the signed-in account's events as ``text/event-stream``."""
    session = await signed_in(request)
    if session is None:
        return Response("sign in first\n", status_code=401, media_type="text/plain")
    svc: Services = request.app.state.services
    feed: LiveFeed = request.app.state.live
    account_id = session.principal.account.id
    # After the last event the page saw (a reconnect), else after the page was rendered.
    resume = request.headers.get("last-event-id", "") or request.query_params.get("since", "")
    cursor = resume if has_prefix(resume, "evt") else id_floor("evt", svc.clock.time())

    async def frames() -> AsyncIterator[str]:
        nonlocal cursor
        feed.streams += 1
        checked = time.monotonic()
        try:
            yield f"retry: {RETRY_MS}\n: live\n\n"
            while not feed.closing:
                tick = feed.tick  # taken before reading: no wake is lost
                try:
                    while True:
                        rows = await events_since(svc.pool, account_id=account_id, after=cursor, limit=BATCH)
                        for row in rows:
                            yield _frame(row)
                        if rows:
                            cursor = rows[-1].id
                        if len(rows) < BATCH:
                            break
                except DATABASE_DOWN:  # the database is away: the next wake or keep-alive tries again
                    yield ": database unavailable\n\n"
                woken = await feed.wait(tick, SAFETY_WAKE)
                if time.monotonic() - checked >= SAFETY_WAKE:  # busy or idle, the session is re-checked
                    checked = time.monotonic()
                    if await signed_in(request) is None:
                        yield "event: signout\ndata: {}\n\n"
                        return
                if not woken:
                    yield ": keep-alive\n\n"
        finally:
            feed.streams -= 1

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
