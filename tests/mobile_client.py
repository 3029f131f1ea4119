"""Hand-driven SMSGate app calls for tests: raw requests and a raw event stream, so a test
can do exactly what the app does (or what a hostile client does), one step at a time."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import msgspec

from tests.harness import ApiClient, RunningGateway

UA = {"User-Agent": "me.capcom.smsgateway/1.68.0"}


def mobile_url(gateway: RunningGateway) -> str:
    """``http://127.0.0.1:PORT/api/mobile/v1``."""
    return gateway.base_url + "/mobile/v1"


async def pairing_code(api: ApiClient) -> str:
    """A fresh pairing code of ``api``'s account."""
    status, body, _ = await api.post("/v1/devices/pairing-codes")
    assert status == 201, body
    return str(body["code"])


async def call(
    session: aiohttp.ClientSession,
    gateway: RunningGateway,
    method: str,
    path: str,
    *,
    auth: str | None = None,
    body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One mobile API request; ``(status, decoded body or None)``."""
    hdrs = {**UA, **(headers or {})}
    if auth is not None:
        hdrs["Authorization"] = auth
    payload = data if data is not None else (msgspec.json.encode(body) if body is not None else None)
    async with session.request(method, mobile_url(gateway) + path, data=payload, headers=hdrs) as resp:
        raw = await resp.read()
        try:
            return resp.status, (msgspec.json.decode(raw) if raw else None)
        except msgspec.DecodeError:
            return resp.status, raw.decode(errors="replace")


async def register(session: aiohttp.ClientSession, gateway: RunningGateway, api: ApiClient) -> dict[str, Any]:
    """Register a phone by code; ``{id, token, login}``."""
    code = await pairing_code(api)
    body = {"name": "samsung/a52", "simCards": [{"slotIndex": 0, "simNumber": 1, "carrierName": "Beeline"}]}
    status, answer = await call(session, gateway, "POST", "/device", auth=f"Code {code}", body=body)
    assert status == 201, answer
    return dict(answer)


class RawStream:
    """One ``GET /events`` response read line by line into ``events``."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.comments: list[str] = []
        self.ended = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(), name="test.sse")

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, gateway: RunningGateway, token: str) -> RawStream:
        """Open the stream (the caller checks ``status``)."""
        resp = await session.get(
            mobile_url(gateway) + "/events",
            headers={**UA, "Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
        )
        return cls(resp)

    async def _read(self) -> None:
        event = ""
        try:
            async for raw in self.resp.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    await self.events.put((event, msgspec.json.decode(line[5:].strip())))
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    async def next(self, timeout: float = 5.0, *, config: bool = False) -> tuple[str, Any]:
        """The next event; ``SettingsUpdated``/``WebhooksUpdated`` are skipped unless ``config``."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if config or event[0] not in ("SettingsUpdated", "WebhooksUpdated"):
                    return event

    async def close(self) -> None:
        """Drop the connection."""
        self.resp.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def signed(key: str, body: bytes, at: int | None = None) -> dict[str, str]:
    """The app's webhook signature headers."""
    timestamp = str(int(time.time()) if at is None else at)
    signature = hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return {"X-Timestamp": timestamp, "X-Signature": signature, "Content-Type": "application/json"}


def snapshot(
    message_id: str, to: str, state: str, *, error: str | None = None, **states: str
) -> dict[str, Any]:
    """A state report as the app builds it."""
    recipient: dict[str, Any] = {"phoneNumber": to, "state": state}
    if error is not None:
        recipient["error"] = error
    return {"id": message_id, "state": state, "recipients": [recipient], "states": states}
