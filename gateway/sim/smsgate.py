"""A simulated SMSGate Android app in private-server mode ("SSE only"), for tests, the demo and
benchmarks: it speaks the contract of docs/phones.md over real sockets, as the app does.

Per phone (:class:`SmsGatePhone`): register with a pairing code (``Authorization: Code``),
check in with ``PATCH /device`` (a 401 means "register again", which a simulator without a
fresh code cannot: it stops), keep ``GET /events`` open and pull ``GET /message`` on every
(re)connect and every ``MessageEnqueued``. Messages are kept by id (a second pull of an id
sends nothing and only re-reports its state); each state change is reported with the full
snapshot, ``report_repeats`` times, and — with ``stale_reports`` — an older snapshot is sent
again after a newer one, as the app's retried workers do. A lost stream is reopened after a
short backoff. :class:`SmsGateFleet` pairs and runs many.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import aiohttp
import msgspec

from gateway.logs import get_logger
from gateway.sim.phone import SimOptions

__all__ = ["LocalMessage", "SmsGateFleet", "SmsGatePhone", "SmsGateSimError", "app_now", "run_smsgate_sim"]

log = get_logger("gateway.sim.smsgate")

USER_AGENT = "me.capcom.smsgateway/1.68.0"


class SmsGateSimError(Exception):
    """Registration failed or the gateway refused the phone for good."""


def app_now() -> str:
    """The app's date format (milliseconds, numeric offset)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class LocalMessage:
    """The app's local copy of one pulled message."""

    id: str
    phone_numbers: list[str]
    text: str
    state: str = "Pending"
    error: str | None = None
    states: dict[str, str] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        """The full state report the app sends."""
        recipient: dict[str, Any] = {"state": self.state}
        if self.error is not None:
            recipient["error"] = self.error
        return {
            "id": self.id,
            "state": self.state,
            "recipients": [{"phoneNumber": n, **recipient} for n in self.phone_numbers],
            "states": dict(self.states),
        }


class SmsGatePhone:
    """One simulated app; :meth:`register`, then :meth:`start`; :meth:`stop` to end."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        *,
        name: str = "Google/sim",
        sent_delay: float = 0.01,
        delivered_delay: float = 0.01,
        report_repeats: int = 1,
        stale_reports: bool = False,
        failure_error: str | None = None,
        reconnect_delay: float = 0.1,
        rng: random.Random | None = None,
        on_sent: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.sent_delay = sent_delay
        self.delivered_delay = delivered_delay
        self.report_repeats = max(1, report_repeats)
        self.stale_reports = stale_reports
        self.failure_error = failure_error
        self.reconnect_delay = reconnect_delay
        self.rng = rng or random.Random(0)
        self.on_sent = on_sent
        self.device_id = ""
        self.token = ""
        self.messages: dict[str, LocalMessage] = {}
        self.radio: list[str] = []
        """Ids handed to the "radio", in order: one entry per real send."""
        self.connected = asyncio.Event()
        self.streams_opened = 0
        self.stopped_reason = ""
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self._response: aiohttp.ClientResponse | None = None
        self.signing_key: str | None = None
        self.webhooks: dict[str, str] = {}
        self.configured = asyncio.Event()
        """Set once ``GET /settings`` was read (after ``SettingsUpdated``)."""
        self.hooked = asyncio.Event()
        """Set once ``GET /webhooks`` was read (after ``WebhooksUpdated``)."""

    # --- HTTP -------------------------------------------------------------------------------

    def _headers(self, auth: str | None = None) -> dict[str, str]:
        return {
            "Authorization": auth or f"Bearer {self.token}",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }

    async def _call(
        self, method: str, path: str, body: Any = None, auth: str | None = None
    ) -> tuple[int, Any]:
        data = msgspec.json.encode(body) if body is not None else None
        async with self.http.request(
            method, self.base_url + path, data=data, headers=self._headers(auth)
        ) as r:
            raw = await r.read()
            return r.status, (msgspec.json.decode(raw) if raw else None)

    async def register(self, code: str) -> None:
        """``POST /device`` with ``Authorization: Code``; keeps the token."""
        body = {"name": self.name, "simCards": [{"slotIndex": 0, "simNumber": 1, "carrierName": "SimTel"}]}
        status, answer = await self._call("POST", "/device", body, auth=f"Code {code}")
        if status not in (200, 201):
            raise SmsGateSimError(f"POST /device: HTTP {status}: {answer!r}")
        self.device_id, self.token = answer["id"], answer["token"]

    async def check_in(self) -> int:
        """``PATCH /device`` as at every app start; the status (401: must register again)."""
        body = {"id": self.device_id, "simCards": [{"slotIndex": 0, "simNumber": 1, "carrierName": "SimTel"}]}
        status, _ = await self._call("PATCH", "/device", body)
        return status

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Check in and keep the event stream open (a named background task)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"smsgate.{self.device_id}")

    async def stop(self) -> None:
        """Close the stream and stop every pending step."""
        for task in [*self._work, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._work, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def drop_stream(self) -> None:
        """Lose the event stream (as a network change does); the phone reconnects."""
        if self._response is not None:
            self._response.close()

    async def _run(self) -> None:
        if await self.check_in() == 401:
            self.stopped_reason = "unauthorized"
            return
        while True:
            try:
                await self._stream()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("sim.smsgate_stream_lost", device_id=self.device_id, error=repr(exc))
            if self.stopped_reason:
                return
            self.connected.clear()
            await asyncio.sleep(self.reconnect_delay)

    async def _stream(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=3600)
        async with self.http.get(self.base_url + "/events", headers=self._headers(), timeout=timeout) as resp:
            if resp.status == 401:
                self.stopped_reason = "unauthorized"
                return
            if resp.status != 200:
                raise ValueError(f"GET /events: HTTP {resp.status}")
            self._response = resp
            self.streams_opened += 1
            self.connected.set()
            self._spawn(self.pull())  # the app pulls on every (re)connect
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    self._on_event(event, msgspec.json.decode(line[5:].strip() or "null"))
                    event = ""
        self._response = None

    def _on_event(self, event: str, data: Any) -> None:
        if event == "MessageEnqueued":
            self._spawn(self.pull())
        elif event == "SettingsUpdated":
            self._spawn(self.fetch_settings())
        elif event == "WebhooksUpdated":
            self._spawn(self.fetch_webhooks())
        elif event == "MessageCancelled" and isinstance(data, dict):
            local = self.messages.get(str(data.get("messageId")))
            if local is not None and local.state == "Pending":
                self._spawn(self._move(local, "Cancelled"))

    async def fetch_settings(self) -> None:
        """``GET /settings``: keep the webhook signing key."""
        status, settings = await self._call("GET", "/settings")
        if status == 200 and isinstance(settings, dict):
            self.signing_key = settings.get("webhooks", {}).get("signing_key")
            self.configured.set()

    async def fetch_webhooks(self) -> None:
        """``GET /webhooks``: where each event is posted."""
        status, hooks = await self._call("GET", "/webhooks")
        if status == 200 and isinstance(hooks, list):
            self.webhooks = {h["event"]: h["url"] for h in hooks}
            self.hooked.set()

    async def _webhook(self, event: str, payload: dict[str, Any]) -> int:
        """Post one webhook as the app does (signed when a key is set); the HTTP status."""
        url = self.webhooks.get(event)
        if url is None:
            raise SmsGateSimError(f"no {event} webhook configured")
        body = msgspec.json.encode(
            {
                "id": f"wh-{self.rng.getrandbits(48):x}",
                "webhookId": event,
                "event": event,
                "deviceId": self.device_id,
                "payload": payload,
            }
        )
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.signing_key:
            timestamp = str(int(time.time()))
            headers["X-Timestamp"] = timestamp
            headers["X-Signature"] = hmac.new(
                self.signing_key.encode(), body + timestamp.encode(), sha256
            ).hexdigest()
        async with self.http.post(url, data=body, headers=headers) as resp:
            return resp.status

    async def receive_sms(
        self, sender: str, text: str, sim_number: int = 1, received_at: str | None = None
    ) -> int:
        """The phone received an SMS: its ``sms:received`` webhook (the HTTP status). The app's
        ``messageId`` is a hash of the content; a retry repeats ``received_at``."""
        digest = sha256(f"{sender}{text}".encode()).hexdigest()[:16]
        payload = {
            "messageId": digest,
            "message": text,
            "sender": sender,
            "phoneNumber": sender,
            "simNumber": sim_number,
            "receivedAt": received_at or app_now(),
        }
        return await self._webhook("sms:received", payload)

    async def ping(self, battery: int = 80, charging: bool = False) -> int:
        """A ``system:ping`` webhook with health checks (the HTTP status)."""
        checks = {
            "battery:level": {"observedValue": battery, "observedUnit": "percent", "status": "pass"},
            "battery:charging": {
                "observedValue": 2 if charging else 0,
                "observedUnit": "flags",
                "status": "pass",
            },
            "connection:status": {"observedValue": 1, "observedUnit": "boolean", "status": "pass"},
            "connection:transport": {"observedValue": 2, "observedUnit": "flags", "status": "pass"},
        }
        return await self._webhook(
            "system:ping", {"health": {"status": "pass", "version": "1.68.0", "checks": checks}}
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"smsgate.{self.device_id}.step")
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def pull(self) -> list[dict[str, Any]]:
        """``GET /message``: keep new ids and send them; known ids only re-report their state."""
        status, items = await self._call("GET", "/message")
        if status != 200:
            return []
        for item in items:
            local = self.messages.get(item["id"])
            if local is not None:
                self._spawn(self._report(local, local.snapshot()))
                continue
            local = LocalMessage(item["id"], list(item["phoneNumbers"]), item["textMessage"]["text"])
            self.messages[local.id] = local
            if item.get("state") == "Cancelling":
                self._spawn(self._move(local, "Cancelled"))
            else:
                self._spawn(self._send(local))
        return list(items)

    async def _send(self, local: LocalMessage) -> None:
        self.radio.append(local.id)
        if self.on_sent is not None:
            self.on_sent(
                {
                    "device_id": self.device_id,
                    "id": local.id,
                    "to": local.phone_numbers[0],
                    "message": local.text,
                    "at": app_now(),
                }
            )
        await self._move(local, "Processed")
        await asyncio.sleep(self.sent_delay * self.rng.uniform(0.5, 1.5))
        if self.failure_error is not None:
            local.error = self.failure_error
            await self._move(local, "Failed")
            return
        await self._move(local, "Sent")
        await asyncio.sleep(self.delivered_delay * self.rng.uniform(0.5, 1.5))
        await self._move(local, "Delivered")

    async def _move(self, local: LocalMessage, state: str) -> None:
        local.state = state
        local.states[state] = app_now()
        snapshot = local.snapshot()
        local.snapshots.append(snapshot)
        for _ in range(self.report_repeats):
            await self._report(local, snapshot)
        if self.stale_reports and len(local.snapshots) > 1:
            await self._report(local, self.rng.choice(local.snapshots[:-1]))

    async def _report(self, local: LocalMessage, snapshot: dict[str, Any]) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            await self._call("PATCH", "/message", [snapshot])


class SmsGateFleet:
    """Several simulated apps, each registered with its own pairing code."""

    def __init__(self, http: aiohttp.ClientSession, api_url: str, token: str) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.phones: list[SmsGatePhone] = []
        self.sent: list[dict[str, Any]] = []

    async def add(self, **options: Any) -> SmsGatePhone:
        """Pair one more phone through the API and start it; returns once its stream is open."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        async with self.http.post(
            f"{self.api_url}/v1/devices/pairing-codes", data=b"{}", headers=headers
        ) as r:
            if r.status != 201:
                raise SmsGateSimError(f"pairing code: HTTP {r.status}: {await r.text()}")
            code = (await r.json())["code"]
        options.setdefault("on_sent", self.sent.append)
        phone = SmsGatePhone(self.http, f"{self.api_url}/mobile/v1", **options)
        await phone.register(code)
        self.phones.append(phone)
        phone.start()
        async with asyncio.timeout(10):
            await phone.connected.wait()
        return phone

    async def stop(self) -> None:
        """Stop every phone."""
        await asyncio.gather(*(p.stop() for p in self.phones))


async def run_smsgate_sim(options: SimOptions) -> int:
    """``relaygate relay-sim --kind smsgate``: register ``options.devices`` simulated SMSGate
    apps (one pairing code each, created with ``options.token``) and run them until
    SIGINT/SIGTERM. ``--record`` gets one JSON line per SMS sent; ``--state-dir`` is not used
    (an SMSGate phone that lost its token registers again with a new code)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(options.seed)
    record = options.record.open("ab") if options.record is not None else None

    def sent(line: dict[str, Any]) -> None:
        fleet.sent.append(line)
        if record is not None:
            record.write(msgspec.json.encode(line) + b"\n")
            record.flush()

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            fleet = SmsGateFleet(http, options.api_url, options.token)
            try:
                for index in range(options.devices):
                    failing = options.failure_rate > 0 and rng.random() < options.failure_rate
                    phone = await fleet.add(
                        name=f"SMSGate sim/{index + 1}",
                        sent_delay=options.sent_delay,
                        delivered_delay=options.delivered_delay,
                        failure_error=f"Send result: RESULT_ERROR_{options.failure_reason.upper()}"
                        if failing
                        else None,
                        rng=random.Random(rng.random()),
                        on_sent=sent,
                    )
                    print(f"registered {phone.device_id} (SMSGate sim/{index + 1})", flush=True)
            except (SmsGateSimError, aiohttp.ClientError, TimeoutError) as exc:
                print(f"relaysim: {exc}", file=sys.stderr, flush=True)
                await fleet.stop()
                return 1
            print(f"{len(fleet.phones)} SMSGate phones connected; Ctrl-C to stop", flush=True)
            await stop.wait()
            await fleet.stop()
            print(f"stopped; {len(fleet.sent)} SMS sent", flush=True)
            return 0
    finally:
        if record is not None:
            record.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
