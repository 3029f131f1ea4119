"""The live registry of connected relays.

One :class:`~gateway.fleet.link.RelayLink` per connected device: a WebSocket
:class:`RelayConnection` (a second connection of the same device replaces the first, which is
closed with 4000) or an SMSGate phone's link (:mod:`gateway.mobile.link`). The hub keeps each phone's telemetry in memory,
flushes it to the database in batches, records ``device.online`` / ``device.offline`` events
in the outbox (debounced: a relay back within ``event_debounce`` seconds produces neither), and
forwards the delivery-relevant happenings (online, offline, ack, report) to
the :class:`RelayEvents` sink the send pipeline implements.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.events import DeviceEventData, event_row
from gateway.fleet.connection import RelayConnection, close_connection
from gateway.fleet.devices import DeviceRecord, LiveTelemetry
from gateway.fleet.link import RelayLink
from gateway.logs import get_logger
from protocol import CancelResult, CloseCode, Report
from store.batcher import Batcher, write_isolating
from store.devices import flush_telemetry
from store.outbox import EventRow, insert_events

__all__ = ["RelayConnection", "RelayEvents", "RelayHub", "close_connection"]

log = get_logger("gateway.fleet")


class RelayEvents(Protocol):
    """What the send pipeline hears from the relay side (and from the device registry)."""

    def device_changed(self, device: DeviceRecord) -> None:
        """A device was paired or its settings changed."""

    def device_removed(self, device_id: str) -> None:
        """A device was unpaired: its work is re-routed or fails."""

    def relay_online(self, device: DeviceRecord) -> None:
        """The device said hello: it can take work."""

    def relay_offline(self, device_id: str) -> None:
        """The device's session ended (or was replaced): its unacked work returns to the queue."""

    def relay_acked(self, device_id: str, message_id: str) -> None:
        """The device took a send command."""

    def relay_sims(self, device_id: str, declared: frozenset[int], ready: frozenset[int]) -> None:
        """The device's hello or heartbeat listed its SIM slots and which are ready."""

    async def relay_reported(self, device_id: str, report: Report) -> None:
        """The device reported sent/delivered/failed; return once the report is stored.

        Raises :class:`store.batcher.ItemRejected` if the database refused it, or the
        connection error if the database could not be reached; the relay gets no
        ``report_ack`` then."""

    async def relay_cancel_result(self, device_id: str, frame: CancelResult) -> None:
        """The device answered a ``cancel`` (v1.1); return once a ``cancelled`` is stored.
        Raises like :meth:`relay_reported`."""


class RelayHub:
    """Registry of paired devices and live connections, telemetry and device events.

    :attr:`devices` is the gateway's one record of each paired device's settings; the scheduler
    (through :class:`RelayEvents`), the send path and the API read it, and only the hub changes
    it (:meth:`register_paired` at start, :meth:`update_device`, :meth:`forget_device`, and a
    hello, which brings the settings the socket was opened with)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        clock: Clock = SYSTEM_CLOCK,
        flush_interval: float = 5.0,
        event_debounce: float = 0.0,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._event_debounce = event_debounce
        self._offline_pending: dict[str, tuple[asyncio.TimerHandle, str, DeviceEventData]] = {}
        """Devices gone less than ``event_debounce`` ago: their ``device.offline`` is not written yet."""
        self._events: RelayEvents | None = None
        self._conns: dict[str, RelayLink] = {}
        self._online: set[str] = set()
        self._dirty: set[str] = set()
        self._sent: dict[str, deque[float]] = {}
        self._flush_interval = flush_interval
        self._wake_flush = asyncio.Event()
        self._by_token: dict[bytes, str] = {}
        self._known: dict[str, tuple[bytes, DeviceRecord, LiveTelemetry]] = {}
        self.devices: dict[str, DeviceRecord] = {}
        """Every paired device by id (read it; change it only through the hub's methods)."""
        self._unpaired: set[str] = set()
        self.closing = False
        """Set by :meth:`close_all`: links opening from now on are refused."""
        self.event_writer: Batcher[EventRow, None] = Batcher(
            pool, insert_events, name="relay.events", one_statement=True
        )

    def serve(self, events: RelayEvents) -> None:
        """Take ``events`` (the send pipeline, which calls this as it is built) as the one
        receiver of what relays do; once, before any relay connects."""
        if self._events is not None:
            raise RuntimeError("the relay hub already serves a send pipeline")
        self._events = events

    @property
    def events(self) -> RelayEvents:
        """The send pipeline's side of every relay happening."""
        if self._events is None:
            raise RuntimeError("no send pipeline serves the relay hub yet")
        return self._events

    @property
    def clock(self) -> Clock:
        """The gateway's clock, which every relay link reads time from."""
        return self._clock

    # --- registry -----------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceRecord | None:
        """A paired device's settings, or None (unknown or unpaired)."""
        return self.devices.get(device_id)

    def register_paired(self, device: DeviceRecord) -> None:
        """At start: a paired device read from the database (nobody is told)."""
        self.devices[device.id] = device

    def connection(self, device_id: str) -> RelayLink | None:
        """The device's current connection, if any."""
        return self._conns.get(device_id)

    def is_online(self, device_id: str) -> bool:
        """Whether the device has said hello on its current connection."""
        return device_id in self._online

    @property
    def online_count(self) -> int:
        """How many relays are online."""
        return len(self._online)

    @property
    def connection_count(self) -> int:
        """How many relay sockets are open."""
        return len(self._conns)

    async def attach(self, conn: RelayLink) -> None:
        """Register a new connection, replacing (closing with 4000) an older one of that device."""
        old = self._conns.get(conn.device.id)
        self._conns[conn.device.id] = conn
        if old is not None:
            log.info("relay.replaced", device_id=conn.device.id)
            self.events.relay_offline(conn.device.id)
            await old.close(CloseCode.SESSION_REPLACED, "session replaced by a newer connection")

    async def detach(self, conn: RelayLink) -> None:
        """The connection ended; if it was the device's current one the device is offline."""
        if self._conns.get(conn.device.id) is not conn:
            return
        del self._conns[conn.device.id]
        if conn.device.id in self._online:
            self._online.discard(conn.device.id)
            self.events.relay_offline(conn.device.id)
            conn.telemetry.last_seen_at = self._clock.now()
            self._dirty.add(conn.device.id)
            self._offline_event(conn.device.id, conn.device.account_id, self._device_event(conn))
            log.info("relay.offline", device_id=conn.device.id, account_id=conn.device.account_id)

    async def hello(self, conn: RelayLink) -> None:
        """The device's hello arrived: it is online."""
        if self._conns.get(conn.device.id) is not conn:
            return
        self._dirty.add(conn.device.id)
        was_online = conn.device.id in self._online
        self._online.add(conn.device.id)
        self._report_sims(conn)
        if conn.device.id not in self._unpaired:
            self.devices[conn.device.id] = conn.device
        self.events.relay_online(conn.device)
        if not was_online:
            pending = self._offline_pending.pop(conn.device.id, None)
            if pending is not None:  # back within the debounce: no offline, no online event
                pending[0].cancel()
            else:
                self.record_event(conn.device.account_id, "device.online", self._device_event(conn))
            log.info("relay.online", device_id=conn.device.id, account_id=conn.device.account_id)

    def _offline_event(self, device_id: str, account_id: str, data: DeviceEventData) -> None:
        """Write ``device.offline`` now, or after the debounce if the device is still gone."""
        if self._event_debounce <= 0:
            self.record_event(account_id, "device.offline", data)
            return
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self._event_debounce, self._settle_offline, device_id)
        self._offline_pending[device_id] = (handle, account_id, data)

    def _settle_offline(self, device_id: str) -> None:
        pending = self._offline_pending.pop(device_id, None)
        if pending is not None:
            handle, account_id, data = pending
            handle.cancel()
            self.record_event(account_id, "device.offline", data)

    def settle_offline_events(self) -> int:
        """Write every ``device.offline`` the debounce still holds (at shutdown); how many."""
        devices = list(self._offline_pending)
        for device_id in devices:
            self._settle_offline(device_id)
        return len(devices)

    def heartbeat(self, conn: RelayLink) -> None:
        """Telemetry changed; it will be flushed with the next batch."""
        self._dirty.add(conn.device.id)
        if self._conns.get(conn.device.id) is conn:
            self._report_sims(conn)

    def _report_sims(self, conn: RelayLink) -> None:
        """Tell the pipeline which SIM slots the phone has and which can send now."""
        sims = conn.telemetry.sims
        declared = frozenset(int(s["slot"]) for s in sims)
        self.events.relay_sims(
            conn.device.id, declared, frozenset(int(s["slot"]) for s in sims if s["ready"])
        )

    def update_device(self, device: DeviceRecord) -> None:
        """A device was paired or its settings changed (name, enabled, limits): the registry,
        its live link and the send pipeline take them."""
        self.devices[device.id] = device
        conn = self._conns.get(device.id)
        if conn is not None:
            conn.device = device
        known = self._known.get(device.id)
        if known is not None:
            self._known[device.id] = (known[0], device, known[2])
        self.events.device_changed(device)

    # --- credentials seen in this process ------------------------------------------------------

    def known_device(self, token_hash: bytes) -> tuple[DeviceRecord, LiveTelemetry] | None:
        """The device a token hash opened a socket for before, so a reconnect needs no query."""
        device_id = self._by_token.get(token_hash)
        if device_id is None or device_id in self._unpaired:
            return None
        _, device, telemetry = self._known[device_id]
        return device, telemetry

    def remember_device(self, token_hash: bytes, device: DeviceRecord, telemetry: LiveTelemetry) -> None:
        """Cache a device the database accepted (never one unpaired meanwhile)."""
        if device.id not in self._unpaired:
            self._by_token[token_hash] = device.id
            self._known[device.id] = (token_hash, device, telemetry)

    def forget_device(self, device_id: str) -> None:
        """The device was unpaired: its token must not open a socket again, and its work is
        re-routed (the send pipeline is told)."""
        self._unpaired.add(device_id)
        self.devices.pop(device_id, None)
        known = self._known.pop(device_id, None)
        if known is not None:
            self._by_token.pop(known[0], None)
        self.events.device_removed(device_id)

    async def close_device(self, device_id: str, code: CloseCode, reason: str) -> None:
        """Close the device's socket (unpairing, shutdown)."""
        conn = self._conns.get(device_id)
        if conn is not None:
            await conn.close(code, reason)

    async def close_all(self, code: CloseCode, reason: str) -> None:
        """Close every relay link (gateway shutdown); no new one is accepted after this."""
        self.closing = True
        conns = list(self._conns.values())
        await asyncio.gather(*(c.close(code, reason) for c in conns))

    # --- counters -----------------------------------------------------------------------------

    def count_sent(self, device_id: str) -> None:
        """One SMS reported sent by the device (for "sent in the last hour")."""
        window = self._sent.setdefault(device_id, deque())
        now = self._clock.monotonic()
        window.append(now)
        while window[0] < now - 3600:  # forget as we go: unread windows must not grow for ever
            window.popleft()

    def sent_last_hour(self, device_id: str) -> int:
        """SMS the device reported sent in the last hour (since this process started)."""
        window = self._sent.get(device_id)
        if not window:
            return 0
        horizon = self._clock.monotonic() - 3600
        while window and window[0] < horizon:
            window.popleft()
        return len(window)

    # --- persistence --------------------------------------------------------------------------

    def _device_event(self, conn: RelayLink) -> DeviceEventData:
        t = conn.telemetry
        return DeviceEventData(
            device_id=conn.device.id,
            device_name=conn.device.name,
            last_seen_at=t.last_seen_at,
            battery=t.battery,
            signal=t.signal,
        )

    def record_event(self, account_id: str, event_type: str, data: DeviceEventData) -> None:
        """Queue one event for the outbox; the ``relay.events`` writer group-commits them, so a
        reconnect storm costs one commit per batch, and no relay waits for it."""
        future = self.event_writer.submit_nowait(event_row(account_id, event_type, data))
        future.add_done_callback(_log_lost_event)

    async def flush_telemetry(self) -> int:
        """Write the telemetry of every device that changed since the last flush; return how many.

        One statement for all; if the database refuses one device's values, the others are
        written without it (``relay.telemetry_refused``). If the database cannot be reached the
        devices stay dirty for the next flush and the error propagates."""
        dirty, self._dirty = self._dirty, set()
        rows: list[tuple[str, LiveTelemetry]] = []
        for device_id in dirty:
            conn = self._conns.get(device_id)
            if conn is not None:
                rows.append((device_id, conn.telemetry))
            elif (known := self._known.get(device_id)) is not None:
                rows.append((device_id, known[2]))  # gone since: its last telemetry
        if not rows:
            return 0
        try:
            async with self._pool.acquire() as db, db.transaction():
                outcomes = await write_isolating(db, _write_telemetry, rows, name="relay.telemetry")
        except BaseException:
            self._dirty |= dirty
            raise
        refused = [d for (d, _), outcome in zip(rows, outcomes, strict=True) if outcome is not None]
        for device_id in refused:
            log.error("relay.telemetry_refused", device_id=device_id)
        return len(rows) - len(refused)

    async def run_flusher(self) -> None:
        """Background task ``relay.telemetry``: flush every ``flush_interval`` seconds."""
        while True:
            try:
                await asyncio.wait_for(self._wake_flush.wait(), self._flush_interval)
            except TimeoutError:
                pass
            self._wake_flush.clear()
            try:
                await self.flush_telemetry()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay.telemetry_flush_failed", error=repr(exc))


async def _write_telemetry(db: Any, rows: Sequence[tuple[str, LiveTelemetry]]) -> list[None]:
    """One ``UPDATE`` for the telemetry of many devices."""
    await flush_telemetry(
        db,
        device_ids=[d for d, _ in rows],
        last_seen_at=[t.last_seen_at for _, t in rows],
        battery=[t.battery for _, t in rows],
        charging=[t.charging for _, t in rows],
        signal=[t.signal for _, t in rows],
        network=[t.network for _, t in rows],
        sims=[t.sims for _, t in rows],
        queue_length=[t.queue_length for _, t in rows],
        app_version=[t.app_version for _, t in rows],
    )
    return [None] * len(rows)


def _log_lost_event(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("relay.event_lost", error=repr(future.exception()))
