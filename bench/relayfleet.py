"""A simulated relay fleet in its own process: many phones, one event loop, no task per phone.

Run as ``python -m bench.relayfleet CONFIG.json``; it is driven by the runner with one JSON
command per line on stdin and answers one JSON line per command on stdout (see
:func:`_command`). Each phone speaks the documented protocol (``docs/protocol.md``) over its own
socket through :class:`bench.wsclient.WsClient`: upgrade with its device token and
``relaygate.v1``, ``hello``, ``welcome``, heartbeats on the interval, ``ack`` for every ``send``
(de-duplicated by id, duplicates re-acked and their last report re-sent), then reports ``sent``
and ``delivered`` kept in an outbox until their ``report_ack`` and re-sent after a reconnect.
After a drop a phone reconnects with full jitter (uniform 0..1 s, doubling on failure, as the
protocol asks).

For every message it notes, on the shared monotonic clock, when the ``send`` arrived, when
``sent`` was reported, and when the ``report_ack`` for ``sent`` and ``delivered`` came back,
and how many times the phone's "radio" sent it. With ``"plain": true`` it is a bare WebSocket
client fleet for the calibration echo server (no auth, no frames of ours).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import msgspec
import uvloop

from bench.sysstat import raise_fd_limit
from bench.wsclient import WsClient
from protocol import (
    SUBPROTOCOL,
    InvalidFrame,
    ReportAck,
    Send,
    Welcome,
    decode_gateway_frame,
)

__all__ = ["FleetConfig", "main"]

HELLO = (
    b'{"type":"hello","protocol":1,"app_version":"bench-1","model":"BenchPhone","os_version":"14",'
    b'"sims":[{"slot":0,"carrier":"SimTel","ready":true}],"queue_length":0}'
)
HEARTBEAT = (
    b'{"type":"heartbeat","battery":87,"charging":false,"signal":3,"network":"wifi",'
    b'"sims":[{"slot":0,"carrier":"SimTel","ready":true}],"app_version":"bench-1","queue_length":0}'
)
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
STOP_CODES = {4000, 4001}
MAX_COMMAND_SECONDS = 600.0
HANDSHAKE_TIMEOUT = 30.0
"""Seconds for TCP connect and for the upgrade answer (a loaded gateway answers late, not never)."""
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class DeviceCred(msgspec.Struct):
    """One paired phone."""

    id: str
    token: str


class FleetConfig(msgspec.Struct, kw_only=True):
    """What the runner hands a fleet process."""

    ws_url: str
    devices: list[DeviceCred] = []
    plain: int = 0
    """Calibration mode: this many bare connections to an echo server."""
    sources: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1"])
    heartbeat_interval: float = 30.0
    sent_delay: float = 0.0
    delivered_delay: float = 0.0
    record: str | None = None
    concurrency: int = 128


@dataclass(slots=True)
class Relay:
    """One phone: credentials, its socket, and what it 'persisted'."""

    index: int
    device_id: str
    token: str
    source: str
    ws: WsClient | None = None
    welcomed: bool = False
    stopped: bool = False
    failures: int = 0
    heartbeat: asyncio.TimerHandle | None = None
    taken: dict[str, bool] = field(default_factory=dict)
    """id -> finished."""
    outbox: dict[tuple[str, str], bytes] = field(default_factory=dict)
    last_report: dict[str, bytes] = field(default_factory=dict)


class Fleet:
    """All phones of this process and the shared per-message records."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        url = urlsplit(config.ws_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path = url.path or "/"
        self.rng = random.Random()
        self.gate = asyncio.Semaphore(config.concurrency)
        sources = config.sources or ["127.0.0.1"]
        if config.plain:
            creds = [DeviceCred(id=f"plain-{i}", token="") for i in range(config.plain)]
        else:
            creds = config.devices
        self.relays = [
            Relay(index=i, device_id=c.id, token=c.token, source=sources[i % len(sources)])
            for i, c in enumerate(creds)
        ]
        self.by_id = {r.device_id: r for r in self.relays}
        self.welcomed = 0
        self.all_welcomed = asyncio.Event()
        self.dropped_at: float | None = None
        self.back_after: list[float] = []
        self.records: dict[str, list[float]] = {}
        """id -> [send received, sent reported, sent report_ack, delivered report_ack, radio sends]."""
        self.duplicate_sends = 0
        self.retries = 0
        self.errors: list[str] = []
        self.closed_with: Counter[str] = Counter()
        """Close codes of the sockets that ended (``None``: no close frame), for the runner."""
        self.stopping = False
        self.echo_count = 0
        self._record: IO[bytes] | None = open(config.record, "ab") if config.record else None  # noqa: SIM115
        self._tasks: set[asyncio.Task[None]] = set()

    # --- connecting --------------------------------------------------------------------------

    def start_all(self) -> None:
        """Start connecting every phone (bounded by ``concurrency`` handshakes at once)."""
        for relay in self.relays:
            self._spawn(self._connect(relay, 0.0))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, relay: Relay, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self.stopping or relay.stopped:
            return
        headers: list[tuple[str, str]] = []
        if not self.config.plain:
            headers = [("Authorization", f"Bearer {relay.token}"), ("Sec-WebSocket-Protocol", SUBPROTOCOL)]
        ok = False
        async with self.gate:
            try:
                sock = await asyncio.wait_for(self._socket_from(relay.source), HANDSHAKE_TIMEOUT)
                _, ws = await self.loop.create_connection(
                    lambda: WsClient(
                        self.path,
                        headers,
                        lambda data: self._on_text(relay, data),
                        lambda client: self._on_close(relay, client),
                    ),
                    sock=sock,
                )
                relay.ws = ws
                ok = await asyncio.wait_for(ws.opened, HANDSHAKE_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                self._note(f"connect {relay.device_id}: {exc!r}")
        if not ok:
            if relay.ws is not None:
                relay.ws.abort()
            else:
                self._reconnect_later(relay)
            return
        assert relay.ws is not None
        if self.config.plain:
            self._welcome(relay)
        else:
            relay.ws.send_text(HELLO)

    async def _socket_from(self, source: str) -> socket.socket:
        """A TCP socket from ``source`` connected to the gateway.

        ``IP_BIND_ADDRESS_NO_PORT`` leaves the port choice to ``connect()``, which may reuse a
        port towards another destination: a plain ``bind((source, 0))`` would need a port of
        its own per socket and crawl once the ephemeral range fills up.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.setblocking(False)
            await self.loop.sock_connect(sock, (self.host, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reconnect_later(self, relay: Relay) -> None:
        if self.stopping or relay.stopped:
            return
        relay.failures += 1
        self.retries += 1
        ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(relay.failures - 1, 10))
        self._spawn(self._connect(relay, self.rng.uniform(0.0, ceiling)))

    def _welcome(self, relay: Relay) -> None:
        relay.welcomed = True
        relay.failures = 0
        self.welcomed += 1
        if self.dropped_at is not None:
            self.back_after.append(time.monotonic() - self.dropped_at)
        if self.welcomed >= len(self.relays):
            self.all_welcomed.set()
        if not self.config.plain:
            interval = self.config.heartbeat_interval
            relay.heartbeat = self.loop.call_later(self.rng.uniform(0.1, 1.0) * interval, self._beat, relay)
            for frame in list(relay.outbox.values()):
                self._transmit(relay, frame)

    def _beat(self, relay: Relay) -> None:
        if relay.welcomed and self._transmit(relay, HEARTBEAT):
            relay.heartbeat = self.loop.call_later(self.config.heartbeat_interval, self._beat, relay)

    def _on_close(self, relay: Relay, client: WsClient) -> None:
        if relay.ws is not client:
            return
        relay.ws = None
        self.closed_with[str(client.close_code)] += 1
        if relay.heartbeat is not None:
            relay.heartbeat.cancel()
            relay.heartbeat = None
        if relay.welcomed:
            relay.welcomed = False
            self.welcomed -= 1
            self.all_welcomed.clear()
        if client.close_code in STOP_CODES:
            relay.stopped = True
            self._note(f"{relay.device_id} closed with {client.close_code}")
            return
        self._reconnect_later(relay)

    # --- frames ------------------------------------------------------------------------------

    def _transmit(self, relay: Relay, frame: bytes) -> bool:
        return relay.ws is not None and relay.welcomed and relay.ws.send_text(frame)

    def _on_text(self, relay: Relay, data: bytes) -> None:
        if self.config.plain:
            self.echo_count += 1
            if relay.ws is not None and self._echoing:
                relay.ws.send_text(data)
            return
        try:
            frame = decode_gateway_frame(data)
        except InvalidFrame as exc:
            self._note(f"invalid frame: {exc}")
            return
        if isinstance(frame, Send):
            self._on_send(relay, frame)
        elif isinstance(frame, ReportAck):
            self._on_report_ack(relay, frame)
        elif isinstance(frame, Welcome):
            self._welcome(relay)
        else:
            self._note(f"{relay.device_id} got {data[:200]!r}")

    def _on_send(self, relay: Relay, frame: Send) -> None:
        assert relay.ws is not None
        now = time.monotonic()
        message_id = frame.id
        if message_id in relay.taken:
            self.duplicate_sends += 1
            relay.ws.send_text(b'{"type":"ack","id":"%s"}' % message_id.encode())
            last = relay.last_report.get(message_id)
            if relay.taken[message_id] and last is not None:
                self._transmit(relay, last)
            return
        relay.taken[message_id] = False
        record = self.records.get(message_id)
        if record is None:
            record = self.records[message_id] = [now, 0.0, 0.0, 0.0, 0.0]
        relay.ws.send_text(b'{"type":"ack","id":"%s"}' % message_id.encode())
        if self.config.sent_delay > 0:
            self.loop.call_later(self.config.sent_delay, self._radio_send, relay, frame)
        else:
            self._radio_send(relay, frame)

    def _radio_send(self, relay: Relay, frame: Send) -> None:
        record = self.records[frame.id]
        record[4] += 1
        if self._record is not None:
            line = {"device_id": relay.device_id, "id": frame.id, "to": frame.to, "message": frame.message}
            self._record.write(json.dumps(line).encode() + b"\n")
            self._record.flush()
        record[1] = time.monotonic()
        self._report(relay, frame.id, b"sent")
        if self.config.delivered_delay > 0:
            self.loop.call_later(self.config.delivered_delay, self._delivered, relay, frame.id)
        else:
            self._delivered(relay, frame.id)

    def _delivered(self, relay: Relay, message_id: str) -> None:
        relay.taken[message_id] = True
        self._report(relay, message_id, b"delivered")

    def _report(self, relay: Relay, message_id: str, status: bytes) -> None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()
        frame = b'{"type":"report","id":"%s","status":"%s","at":"%s","parts":1}' % (
            message_id.encode(),
            status,
            at,
        )
        relay.outbox[(message_id, status.decode())] = frame
        relay.last_report[message_id] = frame
        self._transmit(relay, frame)

    def _on_report_ack(self, relay: Relay, frame: ReportAck) -> None:
        relay.outbox.pop((frame.id, frame.status), None)
        record = self.records.get(frame.id)
        if record is None:
            return
        slot = 2 if frame.status == "sent" else 3
        if not record[slot]:
            record[slot] = time.monotonic()

    def _note(self, error: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(error)

    # --- commands ----------------------------------------------------------------------------

    _echoing = False

    def stats(self) -> dict[str, Any]:
        """Counts for the runner."""
        return {
            "relays": len(self.relays),
            "welcomed": self.welcomed,
            "received": len(self.records),
            "delivered_acked": sum(1 for r in self.records.values() if r[3]),
            "duplicate_sends": self.duplicate_sends,
            "radio_duplicates": sum(1 for r in self.records.values() if r[4] > 1),
            "outbox": sum(len(r.outbox) for r in self.relays),
            "stopped": sum(r.stopped for r in self.relays),
            "reconnects": self.retries,
            "closed_with": dict(self.closed_with),
            "errors": self.errors[:10],
        }

    async def wait_welcomed(self, timeout: float) -> float:
        """Seconds until every phone is welcomed (raises TimeoutError)."""
        started = time.monotonic()
        await asyncio.wait_for(self.all_welcomed.wait(), timeout)
        return time.monotonic() - started

    def drop(self) -> None:
        """Abort every socket at once; each phone reconnects with full jitter."""
        self.dropped_at = time.monotonic()
        self.back_after = []
        for relay in self.relays:
            if relay.ws is not None:
                relay.ws.abort()

    def churn(self, fraction: float) -> int:
        """Abort the sockets of a random ``fraction`` of the connected phones (they reconnect with
        full jitter, like S5's drop but for a few); how many were aborted."""
        up = [r for r in self.relays if r.ws is not None and r.welcomed]
        chosen = self.rng.sample(up, min(len(up), max(1, round(fraction * len(self.relays)))))
        for relay in chosen:
            assert relay.ws is not None
            relay.ws.abort()
        return len(chosen)

    async def echo(self, conns: int, seconds: float) -> float:
        """Closed-loop echo round trips per second over ``conns`` connections (plain mode)."""
        self._echoing = True
        self.echo_count = 0
        payload = b'{"type":"heartbeat","echo":true}'
        for relay in self.relays[:conns]:
            if relay.ws is not None:
                relay.ws.send_text(payload)
        await asyncio.sleep(seconds)
        self._echoing = False
        return self.echo_count / seconds

    async def stop(self) -> None:
        """Close every socket normally and stop reconnecting."""
        self.stopping = True
        for relay in self.relays:
            if relay.ws is not None:
                relay.ws.close(1000)
        if self.relays:
            await asyncio.sleep(min(2.0, 0.2 + len(self.relays) / 20_000))
        for relay in self.relays:
            if relay.ws is not None:
                relay.ws.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._record is not None:
            self._record.close()


async def _command(fleet: Fleet, cmd: dict[str, Any]) -> dict[str, Any]:
    """Run one runner command and return its answer."""
    name = cmd.get("cmd")
    timeout = min(float(cmd.get("timeout", 60.0)), MAX_COMMAND_SECONDS)
    if name == "connect":
        fleet.start_all()
        try:
            seconds = await fleet.wait_welcomed(timeout)
            return {"ok": True, "seconds": seconds, **fleet.stats()}
        except TimeoutError:
            return {"ok": False, "seconds": None, **fleet.stats()}
    if name == "drop":
        fleet.drop()
        return {"ok": True, "dropped": len(fleet.relays)}
    if name == "churn":
        return {"ok": True, "aborted": fleet.churn(min(1.0, max(0.0, float(cmd.get("fraction", 0.05)))))}
    if name == "wait_back":
        try:
            await fleet.wait_welcomed(timeout)
        except TimeoutError:
            pass
        return {"ok": True, "back_after": sorted(round(t, 4) for t in fleet.back_after), **fleet.stats()}
    if name == "stats":
        return {"ok": True, **fleet.stats()}
    if name == "reset":
        fleet.records = {}
        fleet.duplicate_sends = 0
        return {"ok": True}
    if name == "dump":
        _write(cmd["path"], msgspec.json.encode(fleet.records))
        return {"ok": True, "messages": len(fleet.records)}
    if name == "echo":
        rate = await fleet.echo(int(cmd.get("conns", 100)), min(float(cmd.get("seconds", 2.0)), 60.0))
        return {"ok": True, "round_trips_per_s": rate}
    if name == "stop":
        await fleet.stop()
        return {"ok": True, "stopped": True}
    return {"ok": False, "error": f"unknown command {name!r}"}


def _write(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


async def _main(config: FleetConfig) -> None:
    fleet = Fleet(config)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ok": True, "ready": len(fleet.relays)}), flush=True)
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            answer = await _command(fleet, cmd)
            print(json.dumps(answer), flush=True)
            if cmd.get("cmd") == "stop":
                break
    finally:
        if not fleet.stopping:
            await fleet.stop()


def main() -> None:
    """Entry point: ``python -m bench.relayfleet CONFIG.json``."""
    raise_fd_limit()
    uvloop.run(_main(msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=FleetConfig)))


if __name__ == "__main__":
    main()
