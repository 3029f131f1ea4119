"""One simulated relay phone, speaking only the documented relay protocol over a real WebSocket.

A :class:`SimulatedRelay` behaves like the Android app described in ``docs/protocol.md``: it
connects with its device token, says ``hello``, waits for ``welcome``, acks every ``send`` once
it has "persisted" it (de-duplicating by id, re-acking duplicates), "sends" the SMS after a
jittered delay, reports ``sent`` then ``delivered`` (or ``failed`` with a reason), keeps every
report in an outbox until its ``report_ack`` and re-sends the outbox after each ``welcome``.
It heartbeats with fixed telemetry and reconnects with exponential backoff and full jitter,
except after close 4000 (replaced), 4001 (unpaired) or an HTTP 401 on the upgrade.

It offers protocol v1.1 and v1 (:attr:`SimOptions.protocol` ``"1"``: v1 only). Under v1.1 it
answers ``cancel``: ``cancelled`` if it has not "sent" the SMS yet (the SMS is then never sent;
the answer stays in the outbox until its ``report_ack``), else ``too_late``.

Persistence is simulated in memory; :meth:`SimulatedRelay.snapshot` gives the state a real app
would keep on disk (credentials, taken ids, unfinished commands, outbox), which
:mod:`gateway.sim.relay` writes when the fleet stops. Malformed or unexpected gateway frames are
logged and ignored: the simulator never crashes on gateway misbehaviour.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from gateway.logs import get_logger
from gateway.sending.sms_text import analyse
from gateway.timefmt import rfc3339, utcnow
from protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    SUBPROTOCOLS,
    Ack,
    Cancel,
    CancelResult,
    CloseCode,
    Error,
    GatewayFrame,
    Heartbeat,
    Hello,
    InvalidFrame,
    RelayFrame,
    Report,
    ReportAck,
    Send,
    Sim,
    Welcome,
    decode_gateway_frame,
    encode_frame,
)

__all__ = ["Network", "PendingMessage", "RelayState", "SimOptions", "SimulatedRelay"]

log = get_logger("gateway.sim.relay")

Network = Literal["wifi", "cellular", "none", "unknown"]

WELCOME_TIMEOUT: Final = 10.0
"""Seconds to wait for ``welcome`` after ``hello`` before dropping the socket and retrying."""
LIMIT_WINDOW: Final = 60.0
"""Window of :attr:`SimOptions.per_minute_limit`, in seconds."""
_STOP_CODES: Final = {CloseCode.SESSION_REPLACED: "replaced", CloseCode.DEVICE_UNPAIRED: "unpaired"}
_SIMS: Final = [Sim(slot=0, carrier="SimTel", ready=True)]


LAST_REPORTS_KEPT = 10_000
"""Final reports remembered to answer a repeated ``send`` for a finished message."""


@dataclass(frozen=True)
class SimOptions:
    """Everything that shapes a simulated fleet; one object, built once (CLI or test)."""

    api_url: str
    """The gateway's API base, e.g. ``http://127.0.0.1:8080/api``."""
    token: str
    """Access token with the ``devices.manage`` scope, used to create pairing codes."""
    devices: int = 1
    state_dir: Path | None = None
    """Where ``devices.json`` keeps credentials and state, so a restart reuses the same relays."""
    record: Path | None = None
    """File getting one JSON line per SMS "sent"."""
    sent_delay: float = 0.05
    """Seconds from taking a command to reporting ``sent`` (±50% jitter)."""
    delivered_delay: float = 0.2
    """Seconds from ``sent`` to ``delivered`` (±50% jitter)."""
    failure_rate: float = 0.0
    """Probability that a send fails with :attr:`failure_reason` instead of being sent."""
    failure_reason: str = "generic_failure"
    per_minute_limit: int | None = None
    """Sends started per minute per phone; beyond it, reports ``failed``/``limit_exceeded``."""
    heartbeat_interval: float | None = None
    """Overrides the interval from pairing and ``welcome`` (tests use small values)."""
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    name_prefix: str = "Relay Device"
    """Device ``i`` (from 0) is named ``f"{name_prefix} {i + 1}"``."""
    model: str = "SimPhone 1"
    app_version: str = "sim-1.0"
    battery: int = 87
    charging: bool = False
    signal: int = 3
    network: Network = "wifi"
    connect_concurrency: int = 200
    """Pairings and WebSocket handshakes in progress at once."""
    seed: int | None = None
    """Seed of the one ``random.Random`` behind jitter, backoff and failures."""
    protocol: Literal["1", "1.1"] = "1.1"
    """Newest protocol version offered: ``1.1`` offers v1.1 and v1, ``1`` only v1."""


class PendingMessage(msgspec.Struct, kw_only=True):
    """A taken command not finished yet; ``phase`` is ``taken`` (not sent) or ``sent``."""

    command: Send
    phase: str


class RelayState(msgspec.Struct, kw_only=True):
    """What a phone keeps on disk: its credential, taken ids, unfinished work and outbox."""

    index: int
    device_id: str
    device_token: str
    ws_url: str
    name: str
    heartbeat_interval: float
    taken: list[str] = []
    pending: list[PendingMessage] = []
    outbox: list[Report | CancelResult] = []


class SimulatedRelay:
    """One phone: its credential, its simulated storage and its connection task.

    Observable by tests: :attr:`connected` (set while a session is open after ``welcome``),
    :attr:`sent` (records of SMS sent), :attr:`outbox`, :attr:`acked_reports`,
    :attr:`close_codes` (one per ended connection), :attr:`stopped_reason` and :attr:`done`.
    """

    def __init__(
        self,
        state: RelayState,
        options: SimOptions,
        rng: random.Random,
        *,
        gate: asyncio.Semaphore,
        on_sent: Callable[[dict[str, Any]], None],
        on_welcome: Callable[[SimulatedRelay], None],
    ) -> None:
        self.index = state.index
        self.device_id = state.device_id
        self.name = state.name
        self.token = state.device_token
        self.ws_url = state.ws_url
        self.heartbeat_interval = state.heartbeat_interval
        """Interval in use: the override, else the last ``welcome``'s, else pairing's."""
        self.taken: dict[str, str] = dict.fromkeys(state.taken, "done")
        """Every command id ever taken, with its phase: ``taken``, ``sent`` or ``done``."""
        self.outbox: dict[tuple[str, str], Report | CancelResult] = {_outbox_key(r): r for r in state.outbox}
        self._last_reports: dict[str, Report] = {}
        """Reports not yet acknowledged, keyed by ``(id, status)``, in the order they happened."""
        self.sent: list[dict[str, Any]] = []
        self.acked_reports: list[tuple[str, str]] = []
        """``(id, status)`` of every ``report_ack`` received."""
        self.acks_sent = 0
        self.duplicate_sends = 0
        """``send`` frames for an id already taken (re-acked, not sent again)."""
        self.errors_received: list[Error] = []
        self.subprotocol: str | None = None
        """The subprotocol of the current (or last) session."""
        self.cancels: list[tuple[str, str]] = []
        """``(id, result)`` of every ``cancel`` answered."""
        self._cancelled: set[str] = set()
        self.connections = 0
        """Sessions that reached ``welcome``."""
        self.close_codes: list[int] = []
        self.stopped_reason: str | None = None
        """Why the relay stopped for good: ``stopped``, ``replaced``, ``unpaired``, ``unauthorized``."""
        self.connected = asyncio.Event()
        self.done = asyncio.Event()
        """Set once the connection task has ended for good."""
        self._options = options
        self._rng = rng
        self._gate = gate
        self._on_sent = on_sent
        self._on_welcome = on_welcome
        self._pending: dict[str, PendingMessage] = {}
        for item in state.pending:
            self._pending[item.command.id] = item
            self.taken[item.command.id] = item.phase
        self._send_starts: deque[float] = deque()
        self._ws: ClientConnection | None = None
        self._may_connect = asyncio.Event()
        self._may_connect.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting, and resume the work left unfinished by a previous run."""
        self._task = asyncio.create_task(self._run(), name=f"relaysim.{self.device_id}")
        self._task.add_done_callback(self._task_ended)
        for item in list(self._pending.values()):
            self._spawn(self._deliver(item))

    def drop(self) -> None:
        """Kill the socket abruptly, without a close frame (a phone losing its network).

        The relay reconnects after backoff unless :meth:`pause_reconnect` was called.
        """
        if self._ws is not None:
            self._ws.transport.abort()

    def pause_reconnect(self) -> None:
        """Hold the next (re)connection attempt until :meth:`resume_reconnect`."""
        self._may_connect.clear()

    def resume_reconnect(self) -> None:
        """Allow (re)connecting again."""
        self._may_connect.set()

    async def stop(self) -> None:
        """Close normally (1000), stop reconnecting and stop the message timers."""
        self._stopping = True
        self._may_connect.set()
        if self._ws is not None:
            try:
                async with asyncio.timeout(5.0):
                    await self._ws.close(1000, "relay stopping")
            except Exception:
                self._ws.transport.abort()
        tasks = [*self._tasks, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.stopped_reason = self.stopped_reason or "stopped"
        self.connected.clear()
        self.done.set()

    async def wait_connected(self) -> bool:
        """Until a session is open (True) or the relay stopped for good (False)."""
        if self.connected.is_set() or self.done.is_set():
            return self.connected.is_set()
        waiters = {asyncio.create_task(self.connected.wait()), asyncio.create_task(self.done.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.connected.is_set()

    def snapshot(self) -> RelayState:
        """The state a real app would have persisted, for ``devices.json``."""
        return RelayState(
            index=self.index,
            device_id=self.device_id,
            device_token=self.token,
            ws_url=self.ws_url,
            name=self.name,
            heartbeat_interval=self.heartbeat_interval,
            taken=[i for i, phase in self.taken.items() if phase == "done"],
            pending=list(self._pending.values()),
            outbox=list(self.outbox.values()),
        )

    # --- connection ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff until told to stop."""
        failures = 0
        while not self._finished():
            await self._may_connect.wait()
            if self._finished():
                break
            welcomed = await self._connect_once()
            if self._finished():
                break
            failures = 0 if welcomed else failures + 1
            ceiling = min(self._options.backoff_max, self._options.backoff_base * 2 ** min(failures, 30))
            delay = self._rng.uniform(0.0, ceiling)
            log.debug("sim.reconnect_scheduled", device_id=self.device_id, delay=round(delay, 3))
            await asyncio.sleep(delay)
        self.done.set()

    def _finished(self) -> bool:
        """Whether the relay must not connect again (stopping, replaced, unpaired)."""
        return self._stopping or self.stopped_reason is not None

    async def _connect_once(self) -> bool:
        """One connection, from the upgrade to its end; True if it reached ``welcome``."""
        try:
            async with self._gate:
                ws = await connect(
                    self.ws_url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    subprotocols=[Subprotocol(p) for p in self._subprotocols()],
                    compression=None,
                    max_size=MAX_FRAME_BYTES,
                    ping_interval=None,  # the gateway pings; we answer its pings automatically
                    open_timeout=WELCOME_TIMEOUT,
                )
                self._ws = ws
                self.subprotocol = ws.subprotocol
                await self._transmit_on(ws, self._hello())
                async with asyncio.timeout(WELCOME_TIMEOUT):
                    welcome = await self._await_welcome(ws)
        except InvalidStatus as exc:
            status = exc.response.status_code
            log.warning("sim.upgrade_refused", device_id=self.device_id, status=status)
            if status == 401:
                self.stopped_reason = "unauthorized"
            self._ws = None
            return False
        except Exception as exc:  # refused, reset, timed out, closed early: all retried
            log.info("sim.connect_failed", device_id=self.device_id, error=repr(exc))
            if self._ws is not None:
                self._ws.transport.abort()
                self._ws = None
            return False
        try:
            await self._serve(ws, welcome)
        finally:
            self._ws = None
            self.connected.clear()
        code = int(ws.close_code) if ws.close_code is not None else 1006
        self.close_codes.append(code)
        log.info("sim.closed", device_id=self.device_id, code=code, reason=ws.close_reason)
        if code in _STOP_CODES and not self._stopping:
            self.stopped_reason = _STOP_CODES[CloseCode(code)]
        return True

    async def _await_welcome(self, ws: ClientConnection) -> Welcome:
        """Read frames until ``welcome``; anything before it is logged and ignored."""
        async for data in ws:
            frame = self._decode(data)
            if isinstance(frame, Welcome):
                return frame
            if frame is not None:
                log.warning("sim.frame_out_of_order", device_id=self.device_id, type=type(frame).__name__)
        raise ConnectionError("connection closed before welcome")

    async def _serve(self, ws: ClientConnection, welcome: Welcome) -> None:
        """The open session: heartbeats beside a loop handling gateway frames."""
        interval = self._options.heartbeat_interval or welcome.heartbeat_interval_seconds
        self.heartbeat_interval = float(interval if interval > 0 else self.heartbeat_interval)
        self.connections += 1
        self.connected.set()
        self._on_welcome(self)
        heartbeat = asyncio.create_task(self._heartbeat(ws), name=f"relaysim.heartbeat.{self.device_id}")
        try:
            for report in list(self.outbox.values()):
                await self._transmit_on(ws, report)
            async for data in ws:
                frame = self._decode(data)
                if frame is None:
                    continue
                try:
                    await self._handle(ws, frame)
                except ConnectionClosed:
                    raise
                except Exception:
                    log.exception("sim.frame_failed", device_id=self.device_id, type=type(frame).__name__)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Send a ``heartbeat`` every interval while this socket lives."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._transmit_on(ws, self._heartbeat_frame())

    def _decode(self, data: str | bytes) -> GatewayFrame | None:
        """The frame, or None (logged) when the gateway sent something invalid."""
        try:
            return decode_gateway_frame(data)
        except InvalidFrame as exc:
            log.warning("sim.frame_invalid", device_id=self.device_id, code=exc.code, message=exc.message)
            return None

    async def _handle(self, ws: ClientConnection, frame: GatewayFrame) -> None:
        """React to one gateway frame of an open session."""
        match frame:
            case Send():
                if frame.id in self.taken:
                    self.duplicate_sends += 1
                    last = self._last_reports.get(frame.id)
                    if last is not None and frame.id not in {key[0] for key in self.outbox}:
                        self._spawn(self._report(last))  # the gateway lost track: tell it again
                else:
                    # "persist" before acking: the command now survives a drop or a restart
                    item = PendingMessage(command=frame, phase="taken")
                    self.taken[frame.id] = "taken"
                    self._pending[frame.id] = item
                    self._spawn(self._deliver(item))
                await self._transmit_on(ws, Ack(id=frame.id))
                self.acks_sent += 1
            case ReportAck(id=message_id, status=status):
                self.outbox.pop((message_id, status), None)
                self.acked_reports.append((message_id, status))
            case Cancel(id=message_id):
                await self._cancel(ws, message_id)
            case Error(code=code, message=message, ref=ref):
                self.errors_received.append(frame)
                log.warning(
                    "sim.gateway_error", device_id=self.device_id, code=code, message=message, ref=ref
                )
            case Welcome():
                log.warning("sim.frame_out_of_order", device_id=self.device_id, type="Welcome")

    # --- messages ------------------------------------------------------------------------

    async def _cancel(self, ws: ClientConnection, message_id: str) -> None:
        """Answer a ``cancel``: withdraw the SMS unless it was "sent" already."""
        phase = self.taken.get(message_id)
        if phase in ("sent", "done") and message_id not in self._cancelled:
            self.cancels.append((message_id, "too_late"))
            await self._transmit_on(ws, CancelResult(id=message_id, result="too_late", at=utcnow()))
            return
        # Not sent (or never received): it never will be. Remembered as taken, so a repeated
        # send of that id is acked and ignored.
        self._cancelled.add(message_id)
        self._close_message(message_id)
        self.cancels.append((message_id, "cancelled"))
        result = CancelResult(id=message_id, result="cancelled", at=utcnow())
        self.outbox[_outbox_key(result)] = result
        await self._transmit_on(ws, result)

    async def _deliver(self, item: PendingMessage) -> None:
        """Take one command through sending and delivery, reporting each step."""
        cmd = item.command
        parts = analyse(cmd.message).segments
        if item.phase == "taken":
            if cmd.expires_at <= utcnow():
                await self._finish(cmd, "expired")
                return
            if self._over_limit():
                await self._finish(cmd, "limit_exceeded")
                return
            await asyncio.sleep(self._jitter(self._options.sent_delay))
            if cmd.id in self._cancelled:
                return
            if self._rng.random() < self._options.failure_rate:
                await self._finish(cmd, self._options.failure_reason)
                return
            at = utcnow()
            record = {
                "device_id": self.device_id,
                "id": cmd.id,
                "to": cmd.to,
                "message": cmd.message,
                "sim_slot": cmd.sim_slot,
                "at": rfc3339(at),
            }
            self.sent.append(record)
            self._on_sent(record)
            item.phase = self.taken[cmd.id] = "sent"
            await self._report(Report(id=cmd.id, status="sent", at=at, parts=parts))
        await asyncio.sleep(self._jitter(self._options.delivered_delay))
        self._close_message(cmd.id)
        await self._report(Report(id=cmd.id, status="delivered", at=utcnow(), parts=parts))

    async def _finish(self, cmd: Send, reason: str) -> None:
        """End a command that will not be sent, with a ``failed`` report."""
        self._close_message(cmd.id)
        await self._report(Report(id=cmd.id, status="failed", reason=reason, at=utcnow()))

    def _close_message(self, message_id: str) -> None:
        self.taken[message_id] = "done"
        self._pending.pop(message_id, None)

    def _over_limit(self) -> bool:
        """Whether one more send would break the per-minute limit (counts it when not)."""
        limit = self._options.per_minute_limit
        if limit is None:
            return False
        now = asyncio.get_running_loop().time()
        while self._send_starts and self._send_starts[0] <= now - LIMIT_WINDOW:
            self._send_starts.popleft()
        if len(self._send_starts) >= limit:
            return True
        self._send_starts.append(now)
        return False

    async def _report(self, report: Report) -> None:
        """Put a report in the outbox, then send it if a session is open."""
        self.outbox[(report.id, report.status)] = report
        self._last_reports[report.id] = report
        if len(self._last_reports) > LAST_REPORTS_KEPT:
            del self._last_reports[next(iter(self._last_reports))]
        ws = self._ws
        if ws is not None and self.connected.is_set():
            try:
                await self._transmit_on(ws, report)
            except ConnectionClosed:
                pass  # stays in the outbox; re-sent after the next welcome

    # --- helpers -------------------------------------------------------------------------

    def _subprotocols(self) -> list[str]:
        """What the upgrade offers, newest first."""
        return list(SUBPROTOCOLS) if self._options.protocol == "1.1" else [SUBPROTOCOL]

    async def _transmit_on(self, ws: ClientConnection, frame: RelayFrame) -> None:
        await ws.send(encode_frame(frame), text=True)

    def _hello(self) -> Hello:
        return Hello(
            protocol=PROTOCOL_VERSION,
            app_version=self._options.app_version,
            model=self._options.model,
            os_version="14",
            sims=_SIMS,
            queue_length=len(self._pending),
        )

    def _heartbeat_frame(self) -> Heartbeat:
        o = self._options
        return Heartbeat(
            battery=o.battery,
            charging=o.charging,
            signal=o.signal,
            network=o.network,
            sims=_SIMS,
            app_version=o.app_version,
            queue_length=len(self._pending),
        )

    def _jitter(self, seconds: float) -> float:
        return seconds * self._rng.uniform(0.5, 1.5)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"relaysim.message.{self.device_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """Forget a finished task; log it loudly if it died of a bug."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "sim.task_crashed", device_id=self.device_id, task=task.get_name(), exc_info=task.exception()
            )


def _outbox_key(frame: Report | CancelResult) -> tuple[str, str]:
    """Outbox key of a frame waiting for its ``report_ack``: ``(id, status)``."""
    return (frame.id, frame.status if isinstance(frame, Report) else frame.result)
