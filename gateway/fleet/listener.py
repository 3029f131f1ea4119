"""The relay WebSocket listener: a thin adapter between sockets and :class:`protocol.RelaySession`.

bytes in → session → events → actions (hub, send pipeline) → bytes out. Authentication happens
on the upgrade request (``Authorization: Bearer rgd_…``): a bad, revoked or unpaired credential
gets HTTP 401 before any frame. Compression is off (memory per socket), frames are capped at
``MAX_FRAME_BYTES``, and ping/pong keepalive (one task for every socket,
:mod:`gateway.fleet.keepalive`) runs beside the protocol's own heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import http
import socket
import weakref
from typing import Any

import asyncpg
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.access.tokens import DEVICE_PREFIX, bearer_token, hash_token, is_well_formed
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ApiError, error_body
from gateway.fleet.connection import RelayConnection, close_connection
from gateway.fleet.devices import DeviceRecord, LiveTelemetry, device_from_row, telemetry_from_row
from gateway.fleet.hub import RelayHub
from gateway.fleet.inbound import InboundDesk, InboundSms
from gateway.fleet.keepalive import Keepalive
from gateway.fleet.reports import ReportDesk
from gateway.logs import get_logger
from protocol import (
    MAX_FRAME_BYTES,
    SUBPROTOCOLS,
    CancelResult,
    CancelResultReceived,
    CloseCode,
    CommandAcked,
    HeartbeatReceived,
    HelloReceived,
    Inbound,
    InboundReceived,
    ProtocolVersion,
    ProtocolViolation,
    RelaySession,
    ReportReceived,
    negotiate,
)
from store.batcher import ItemRejected
from store.database import DATABASE_DOWN
from store.devices import device_by_token

__all__ = ["LISTEN_BACKLOG", "RelayListener"]

log = get_logger("gateway.fleet")

LISTEN_BACKLOG = 4096
"""Connections the kernel queues before the gateway accepts them (capped by
``net.core.somaxconn``). asyncio's ``create_server`` listens again with its own backlog (100
unless told), and in a reconnect storm thousands of phones connect within a second: with 100,
the SYNs beyond it were dropped and retried by the phones' TCP after 1, 3, 7, 15 and 31 s, which
was most of S5's time to 99 % back."""

RELAY_PATH = "/relay/v1"
_NOT_STORED: tuple[type[BaseException], ...] = (ItemRejected, *DATABASE_DOWN)


def _reject(status: http.HTTPStatus, code: str, text: str) -> Response:
    body = error_body(ApiError(code, text))
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


class RelayListener:
    """Serves relay sockets on one listening socket."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        hub: RelayHub,
        *,
        heartbeat_interval: float,
        ping_interval: float = 20.0,
        inbound: InboundDesk | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self.hub = hub
        self._heartbeat_interval = heartbeat_interval
        self.keepalive = Keepalive(interval=ping_interval)
        """Pings every open socket (background task ``relay.keepalive``)."""
        self._server: Server | None = None
        self.inbound = inbound or InboundDesk(pool)
        """Stores inbound SMS (protocol v1.1); ``inbound_ack`` only after the commit."""
        self.reports = ReportDesk(hub)
        """Stores reports; acknowledges only stored ones (see :mod:`gateway.fleet.reports`)."""
        self._devices: weakref.WeakKeyDictionary[ServerConnection, tuple[DeviceRecord, LiveTelemetry]] = (
            weakref.WeakKeyDictionary()
        )

    async def start(self, sock: socket.socket) -> None:
        """Begin accepting relay connections on ``sock``."""
        self._server = await serve(
            self._handle,
            sock=sock,
            process_request=self._authenticate,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]  # newest first: preferred
            compression=None,
            max_size=MAX_FRAME_BYTES,
            max_queue=16,
            ping_interval=None,  # self.keepalive pings, instead of a task per socket
            close_timeout=5,
            server_header=None,
            backlog=LISTEN_BACKLOG,
        )

    def stop_accepting(self) -> None:
        """Close the listening socket; open sessions continue until closed."""
        if self._server is not None:
            self._server.close(close_connections=False)

    async def wait_closed(self) -> None:
        """Until every connection handler has finished."""
        if self._server is not None:
            await self._server.wait_closed()

    async def _authenticate(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != RELAY_PATH:
            return _reject(http.HTTPStatus.NOT_FOUND, "not_found", f"relay endpoint is {RELAY_PATH}")
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or not is_well_formed(token, DEVICE_PREFIX):
            return _reject(http.HTTPStatus.UNAUTHORIZED, "unauthorized", "missing or malformed device token")
        key = hash_token(token)
        known = self.hub.known_device(key)  # a reconnect of a device this process has seen
        if known is None:
            try:
                row = await device_by_token(self._pool, token_hash=key)
            except DATABASE_DOWN:  # not a bad token: the relay keeps it and retries
                response = _reject(
                    http.HTTPStatus.SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unreachable; retry later",
                )
                response.headers["Retry-After"] = "2"
                return response
            if row is None:
                return _reject(
                    http.HTTPStatus.UNAUTHORIZED, "unauthorized", "unknown, revoked or unpaired device token"
                )
            known = device_from_row(row), telemetry_from_row(row)
            self.hub.remember_device(key, *known)
        if negotiate(request.headers.get_all("Sec-WebSocket-Protocol")) is None:
            return _reject(
                http.HTTPStatus.UPGRADE_REQUIRED,
                "validation_error",
                f"offer subprotocol {' or '.join(SUBPROTOCOLS)}",
            )
        self._devices[ws] = known
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        device, telemetry = self._devices.pop(ws)
        # The handshake is over and authenticated: its headers would stay with the socket for its
        # whole life (~3 KiB, the largest per-relay cost; websockets' parser also holds the request).
        if ws.request is not None:
            ws.request.headers.clear()
        ws.response = None
        session = RelaySession(
            device_id=device.id,
            now=self._clock.time(),
            heartbeat_interval=self._heartbeat_interval,
            max_in_flight=device.effective_max_in_flight,
            per_minute_limit=device.effective_per_minute,
            per_day_limit=device.per_day_limit,
            version=ProtocolVersion.from_subprotocol(ws.subprotocol) or ProtocolVersion.V1,
        )
        conn = RelayConnection(device, ws, session, telemetry, clock=self._clock)
        conn.start()
        await self.hub.attach(conn)
        self.keepalive.watch(ws)
        try:
            await self._serve(conn)
        except ConnectionClosed:
            pass
        finally:
            self.keepalive.forget(ws)
            self.reports.forget(conn)
            conn.stop()
            await self.hub.detach(conn)

    async def _serve(self, conn: RelayConnection) -> None:
        session, ws, clock = conn.session, conn.ws, self._clock
        while session.close_code is None:
            remaining = session.next_deadline() - clock.time()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    data = await ws.recv()
            except TimeoutError:
                session.check_timeouts(clock.time())
            else:
                session.receive_frame(data, clock.time())
                await conn.flush()  # welcome and error frames depend on nothing being stored
            for event in session.events_received():
                await self._on_event(conn, event)
            await conn.flush()  # report_acks go out only after their reports are stored
        log.info(
            "relay.closing",
            device_id=conn.device.id,
            code=int(session.close_code),
            reason=session.close_reason,
        )
        await close_connection(conn)

    async def _on_event(self, conn: RelayConnection, event: object) -> None:
        match event:
            case HelloReceived(frame=hello):
                conn.telemetry.update_from(hello, self._clock.now())
                await self.hub.hello(conn)
            case HeartbeatReceived(frame=beat):
                conn.telemetry.update_from(beat, self._clock.now())
                self.hub.heartbeat(conn)
            case CommandAcked(id=message_id):
                self.hub.events.relay_acked(conn.device.id, message_id)
            case ReportReceived(frame=report):
                await self.reports.receive(conn, report)  # acked once stored, else parked
            case CancelResultReceived(frame=result):
                await self._cancel_result(conn, result)
            case InboundReceived(frame=sms):  # v1.1
                await self._store_inbound(conn, sms)
            case ProtocolViolation(code=code, message=message):
                log.info("relay.protocol_violation", device_id=conn.device.id, code=code, message=message)
            case _:
                pass

    async def _cancel_result(self, conn: RelayConnection, result: CancelResult) -> None:
        """Store a relay's answer to a ``cancel``; a stored ``cancelled`` gets its ``report_ack``.
        One the database could not take gets none: the relay sends it again after reconnecting."""
        try:
            await self.hub.events.relay_cancel_result(conn.device.id, result)
        except _NOT_STORED as exc:
            log.warning(
                "relay.cancel_result_not_stored", device_id=conn.device.id, id=result.id, error=repr(exc)
            )
            return
        if result.result == "cancelled":
            conn.session.ack_report(result.id, "cancelled")

    async def _store_inbound(self, conn: RelayConnection, sms: Inbound) -> None:
        """Store, then ``inbound_ack``; a database that cannot take it gets no ack (the relay
        sends it again after reconnecting)."""
        try:
            await self.inbound.store(
                InboundSms(
                    account_id=conn.device.account_id,
                    device_id=conn.device.id,
                    relay_id=sms.id,
                    sender=sms.from_,
                    text=sms.text,
                    received_at=sms.received_at,
                    sim_slot=sms.sim_slot,
                )
            )
        except DATABASE_DOWN as exc:
            log.warning("relay.inbound_not_stored", device_id=conn.device.id, error=repr(exc))
            return
        conn.session.ack_inbound(sms.id)

    async def close_all(self) -> None:
        """Close every session with 1001 (going away): phones reconnect with backoff."""
        await self.hub.close_all(CloseCode.GOING_AWAY, "gateway shutting down")
