"""SMSGate phones as relays: their event streams, the link the pipeline dispatches to, and
the desk that hands messages over on a pull.

* A phone is **online** while at least one of its ``GET /events`` streams is open, and for
  ``mobile_offline_grace`` seconds after the last one closed (the app reconnects after 5 s).
  The first stream attaches a :class:`PhoneLink` to the hub (``device.online``); the grace
  running out detaches it (``device.offline``; unpulled work goes back to the queue).
* The pipeline commits ``dispatched`` and then calls :meth:`PhoneLink.send_message`: the
  message waits in the link's outbox and :meth:`PhoneLink.flush` pushes one ``MessageEnqueued``.
* ``GET /message`` (:meth:`PhoneDesk.pull`) acks what it hands out *before* answering, so a
  pulled message is bound to that phone: the app de-duplicates by id and would send it even if
  it also went elsewhere, so a pulled id is never given to another phone (it waits for this
  phone's report or its expiry). Pulled messages are offered again on every pull until the phone
  reports on them (the answer may have been lost).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from gateway.errors import ApiError
from gateway.fleet.devices import DeviceRecord, LiveTelemetry
from gateway.fleet.hub import RelayHub
from gateway.fleet.link import CancelOutcome
from gateway.logs import get_logger
from gateway.mobile.shapes import MobileMessage, TextMessage
from gateway.sending.pipeline import Pipeline
from protocol import CancelResult, CloseCode, Report

__all__ = ["OutMessage", "PhoneDesk", "PhoneLink", "PhoneStream", "app_time"]

log = get_logger("gateway.mobile")

STREAM_BUFFER = 8
"""Events buffered per stream; older ones are dropped (the pull on reconnect covers them)."""
_ENCODER = msgspec.json.Encoder()


def app_time(moment: datetime) -> str:
    """``2026-07-14T08:13:49.123+00:00``: the format the app's Gson reads."""
    return moment.isoformat(timespec="milliseconds")


def sse_frame(event: str, data: Any) -> bytes:
    """One Server-Sent Events frame."""
    return b"event: " + event.encode() + b"\ndata: " + _ENCODER.encode(data) + b"\n\n"


@dataclass(slots=True)
class OutMessage:
    """A message dispatched to a phone, as the pull answers it."""

    id: str
    to: str
    text: str
    sim_slot: int | None
    expires_at: datetime
    created_at: datetime
    cancelling: bool = False

    def wire(self) -> MobileMessage:
        """The app's shape."""
        return MobileMessage(
            id=self.id,
            textMessage=TextMessage(text=self.text),
            phoneNumbers=[self.to],
            simNumber=None if self.sim_slot is None else self.sim_slot + 1,
            withDeliveryReport=True,
            isEncrypted=False,
            validUntil=app_time(self.expires_at),
            priority=0,
            state="Cancelling" if self.cancelling else "Pending",
            createdAt=app_time(self.created_at),
        )


class PhoneStream:
    """One open ``GET /events`` response: a small buffer of frames and an end flag."""

    def __init__(self) -> None:
        self._frames: deque[bytes] = deque(maxlen=STREAM_BUFFER)
        self._ready = asyncio.Event()
        self.ended = False

    def push(self, frame: bytes) -> None:
        """Queue a frame (a copy already waiting is not queued twice)."""
        if not self.ended and frame not in self._frames:
            self._frames.append(frame)
            self._ready.set()

    def end(self) -> None:
        """Finish the response (replaced, unpaired, shutdown, client gone)."""
        self.ended = True
        self._ready.set()

    async def next_frame(self) -> bytes | None:
        """The next frame, or None once the stream ended."""
        while not self._frames:
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        return None if self.ended else self._frames.popleft()


class PhoneLink:
    """The hub's :class:`~gateway.fleet.link.RelayLink` for one SMSGate phone."""

    def __init__(self, device: DeviceRecord, telemetry: LiveTelemetry, desk: PhoneDesk) -> None:
        self._device = device
        self.telemetry = telemetry
        self.connected_at = desk.hub.clock.time()
        self.desk = desk
        self.outbox: dict[str, OutMessage] = {}
        """Dispatched (committed) and not pulled yet."""
        self.streams: list[PhoneStream] = []
        self.closed = False
        self.grace: asyncio.TimerHandle | None = None
        self._enqueued = False

    @property
    def device(self) -> DeviceRecord:
        """The device's stored settings."""
        return self._device

    @device.setter
    def device(self, device: DeviceRecord) -> None:
        limits = (device.max_in_flight, device.per_minute_limit, device.per_day_limit)
        old = (self._device.max_in_flight, self._device.per_minute_limit, self._device.per_day_limit)
        self._device = device
        if limits != old:
            self.push(sse_frame("SettingsUpdated", None))

    @property
    def is_open(self) -> bool:
        """Online until the grace after its last stream ran out (or it was closed)."""
        return not self.closed

    def send_message(
        self, *, id: str, to: str, message: str, sim_slot: int | None, expires_at: datetime
    ) -> None:
        """Keep the message for the next pull."""
        self.outbox[id] = OutMessage(id, to, message, sim_slot, expires_at, self.desk.hub.clock.now())
        self._enqueued = True

    @property
    def can_cancel(self) -> bool:
        """Every SMSGate phone takes ``MessageCancelled``."""
        return True

    def cancel(self, message_id: str) -> CancelOutcome:
        """An unpulled message is simply dropped from the outbox (the phone never sees it); a
        pulled one is offered as ``Cancelling`` on the next pull and announced with
        ``MessageCancelled`` — the phone answers ``Cancelled`` if it had not started, or reports
        it sent."""
        if self.outbox.pop(message_id, None) is not None:
            return "dropped"
        taken = self.desk.taken_of(self._device.id).get(message_id)
        if taken is None:
            return "not_held"
        taken.cancelling = True
        self.push(sse_frame("MessageCancelled", {"messageId": message_id}))
        return "requested"

    async def flush(self) -> None:
        """One ``MessageEnqueued`` for everything dispatched since the last flush."""
        if self._enqueued:
            self._enqueued = False
            self.push(sse_frame("MessageEnqueued", None))

    def push(self, frame: bytes) -> None:
        """Send a frame on every open stream of the phone."""
        for stream in self.streams:
            stream.push(frame)

    async def close(self, code: CloseCode, reason: str) -> None:
        """End every stream and take the phone offline now."""
        self.closed = True
        if self.grace is not None:
            self.grace.cancel()
        for stream in self.streams:
            stream.end()
        log.info("mobile.link_closed", device_id=self._device.id, code=int(code), reason=reason)
        if code is CloseCode.DEVICE_UNPAIRED:
            self.desk.forget(self._device.id)
        await self.desk.hub.detach(self)


class PhoneDesk:
    """The SMSGate phones of one gateway: streams, grace timers and pulls."""

    def __init__(
        self, hub: RelayHub, pipeline: Pipeline, *, grace: float, per_device: int, total: int
    ) -> None:
        self.hub = hub
        self.pipeline = pipeline
        self._grace = grace
        self._per_device = per_device
        self._total = total
        self.open_streams = 0
        self._taken: dict[str, dict[str, OutMessage]] = {}
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._configured: set[str] = set()
        """Phones told ``SettingsUpdated`` by this process."""
        self._tasks: set[asyncio.Task[None]] = set()

    def taken_of(self, device_id: str) -> dict[str, OutMessage]:
        """Messages the phone pulled and has not reported on (kept across its links; after a
        restart, seeded from what the pipeline holds acked for it)."""
        taken = self._taken.get(device_id)
        if taken is None:
            now = self.hub.clock.now()
            taken = self._taken[device_id] = {
                m[0]: OutMessage(*m, created_at=now) for m in self.pipeline.held_by(device_id)
            }
        return taken

    def forget(self, device_id: str) -> None:
        """The device was unpaired."""
        self._taken.pop(device_id, None)
        self._pull_locks.pop(device_id, None)

    async def pull(self, device_id: str) -> list[OutMessage]:
        """What the phone should hold now (``GET /message``): its outbox, acked and moved to
        the pulled set before the answer (the acks are stored first), plus what it pulled
        before and has not reported on. Stale entries (expired, finished) drop out."""
        # One pull per phone at a time: a second pull must not answer a message whose ack the
        # first is still storing (a crash then would let another phone take it).
        async with self._pull_locks.setdefault(device_id, asyncio.Lock()):
            taken = self.taken_of(device_id)
            link = self.link(device_id)
            if link is not None:
                taken.update(link.outbox)  # before any await: a report or a cancel may follow
                link.outbox.clear()
            considered = list(taken)
            held = set(await self.pipeline.relay_took(device_id, considered))
            for message_id in considered:
                if message_id not in held:
                    taken.pop(message_id, None)
            return list(taken.values())

    async def cancelled(self, device_id: str, message_id: str) -> None:
        """The phone reported ``Cancelled``: the cancel the gateway asked for is confirmed (the
        message ends ``cancelled``); one nobody asked for (cancelled on the phone) ends
        ``failed`` with reason ``cancelled``."""
        now = self.hub.clock.now()
        if self.pipeline.cancel_pending(message_id):
            await self.pipeline.relay_cancel_result(
                device_id, CancelResult(id=message_id, result="cancelled", at=now)
            )
            return
        await self.pipeline.relay_reported(
            device_id, Report(id=message_id, status="failed", reason="cancelled", at=now)
        )

    def link(self, device_id: str) -> PhoneLink | None:
        """The phone's current link, if it is online."""
        link = self.hub.connection(device_id)
        return link if isinstance(link, PhoneLink) else None

    async def open_stream(
        self, device: DeviceRecord, telemetry: LiveTelemetry
    ) -> tuple[PhoneLink, PhoneStream]:
        """A new event stream of the phone; the first one brings the phone online."""
        if self.hub.closing:
            raise ApiError("unavailable", "the gateway is shutting down", headers={"Retry-After": "5"})
        if self.open_streams >= self._total:
            log.warning("mobile.streams_full", device_id=device.id, open=self.open_streams)
            raise ApiError(
                "unavailable",
                f"at most {self._total} phone event streams at once",
                {"retry_after_seconds": 30},
                headers={"Retry-After": "30"},
            )
        link = self.link(device.id)
        fresh = link is None or link.closed  # a link whose grace just ran out is being detached
        if link is None or link.closed:
            link = PhoneLink(device, telemetry, self)
            await self.hub.attach(link)  # registers before its first await
        if link.grace is not None:
            link.grace.cancel()
            link.grace = None
        while len(link.streams) >= self._per_device:
            oldest = link.streams.pop(0)
            oldest.end()
            log.info("mobile.stream_replaced", device_id=device.id)
        stream = PhoneStream()
        link.streams.append(stream)
        self.open_streams += 1
        telemetry.last_seen_at = self.hub.clock.now()
        if fresh or not self.hub.is_online(device.id):
            await self.hub.hello(link)
        if device.id not in self._configured:
            # Once per phone and process: the app then fetches the signing key its webhooks need
            # (it asks the user to restart the app after importing settings, so not every time).
            self._configured.add(device.id)
            stream.push(sse_frame("SettingsUpdated", None))
        if fresh:
            stream.push(sse_frame("WebhooksUpdated", None))
        if link.outbox:
            stream.push(sse_frame("MessageEnqueued", None))
        return link, stream

    def close_stream(self, link: PhoneLink, stream: PhoneStream) -> None:
        """A stream ended; after the last one the grace period starts."""
        self.open_streams -= 1
        stream.end()
        if stream in link.streams:
            link.streams.remove(stream)
        link.telemetry.last_seen_at = self.hub.clock.now()
        self.hub.heartbeat(link)
        if link.streams or link.closed or self.hub.connection(link.device.id) is not link:
            return
        loop = asyncio.get_running_loop()
        link.grace = loop.call_later(self._grace, self._grace_over, link)

    def _grace_over(self, link: PhoneLink) -> None:
        if link.streams or link.closed:
            return
        link.closed = True
        task = asyncio.get_running_loop().create_task(self.hub.detach(link), name="mobile.offline")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("mobile.offline_after_grace", device_id=link.device.id)
