"""Relay reports while the database may be down: a report is acknowledged only once stored.

:class:`ReportDesk` stores each ``sent``/``delivered``/``failed`` report through the send
pipeline and queues its ``report_ack``. When the database cannot be reached the report is
**parked** on its connection, unacknowledged: the socket stays open, the relay keeps the report
in its outbox, and later reports of that connection queue behind it so their order holds. The
runtime's database watch calls :meth:`ReportDesk.retry_parked` when PostgreSQL answers again;
the parked reports are then stored in order and acknowledged on the same socket. If the
connection ends first, its parked reports are dropped here — the relay re-sends its outbox after
the next ``welcome`` (protocol §8.2), so nothing is lost either way. A report whose content the
database refuses (:class:`store.batcher.ItemRejected`) is answered with an ``error`` frame
instead and never parked: re-sending it cannot help.
"""

from __future__ import annotations

from collections import deque

import asyncpg
from websockets.exceptions import ConnectionClosed

from gateway.fleet.hub import RelayConnection, RelayHub
from gateway.logs import get_logger
from protocol import Report
from store.batcher import ItemRejected
from store.database import DATABASE_DOWN

__all__ = ["MAX_PARKED_PER_CONNECTION", "ReportDesk"]

log = get_logger("gateway.fleet")

_NOT_STORED: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.PostgresError)
"""The database could not take the report now (down, or failing): park it and try again."""

MAX_PARKED_PER_CONNECTION = 1000
"""Reports one connection may have parked; beyond it they are not kept (nor acknowledged) here:
the relay still holds them and re-sends them after its next ``welcome``."""


class ReportDesk:
    """Stores relay reports and acknowledges the stored ones; parks the rest."""

    def __init__(self, hub: RelayHub) -> None:
        self._hub = hub
        self._parked: dict[RelayConnection, deque[Report]] = {}

    @property
    def parked(self) -> int:
        """Reports waiting for the database."""
        return sum(len(queue) for queue in self._parked.values())

    async def receive(self, conn: RelayConnection, report: Report) -> None:
        """A report arrived on ``conn``: store and acknowledge it, or park it."""
        queue = self._parked.get(conn)
        if queue is not None:  # earlier reports of this connection wait: keep the order
            if len(queue) < MAX_PARKED_PER_CONNECTION:
                queue.append(report)
            return
        if not await self._store(conn, report):
            self._parked[conn] = deque([report])

    def forget(self, conn: RelayConnection) -> None:
        """The connection ended: the relay re-sends what was not acknowledged after reconnecting."""
        self._parked.pop(conn, None)

    async def retry_parked(self) -> int:
        """Store and acknowledge parked reports in order; stop at the first one the database
        refuses. Returns how many were stored."""
        stored = 0
        for conn, queue in list(self._parked.items()):
            if conn.session.close_code is not None or self._hub.connection(conn.device.id) is not conn:
                self._parked.pop(conn, None)
                continue
            while queue:
                if not await self._store(conn, queue[0]):
                    return stored
                queue.popleft()
                stored += 1
            self._parked.pop(conn, None)
            try:
                await conn.flush()
            except ConnectionClosed:
                pass  # the listener notices; the relay re-sends unacknowledged reports
        if stored:
            log.info("relay.reports_stored_late", reports=stored)
        return stored

    async def _store(self, conn: RelayConnection, report: Report) -> bool:
        """True when the report is done with: stored and acknowledged, or refused for good."""
        try:
            await self._hub.events.relay_reported(conn.device.id, report)
        except ItemRejected as exc:  # the database refused its content: re-sending cannot help
            log.warning(
                "relay.report_refused",
                device_id=conn.device.id,
                message_id=report.id,
                error=repr(exc.__cause__),
            )
            conn.session.refuse_report(report.id, "report could not be stored; do not send it again")
            return True
        except _NOT_STORED as exc:
            log.warning(
                "relay.report_not_stored",
                device_id=conn.device.id,
                message_id=report.id,
                status=report.status,
                error=repr(exc),
            )
            return False
        if report.status == "sent":
            self._hub.count_sent(conn.device.id)
        conn.session.ack_report(report.id, report.status)
        return True
