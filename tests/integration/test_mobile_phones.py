"""SMSGate phones as relays: registration by code, SSE push, pulls, snapshot reports, losing
the stream, grace, and mixed fleets with WebSocket relays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.sim.smsgate import SmsGateFleet
from tests.harness import ApiClient, RunningGateway, eventually

TO = "+998901234567"


@pytest.fixture
async def phones(
    session: aiohttp.ClientSession, gateway: RunningGateway, account: tuple[str, str]
) -> AsyncIterator[SmsGateFleet]:
    """A fleet of simulated SMSGate apps for the account (none yet)."""
    fleet = SmsGateFleet(session, gateway.base_url, account[1])
    yield fleet
    await fleet.stop()


async def send(api: ApiClient, **body: Any) -> str:
    status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hello", **body})
    assert status == 200, answer
    return str(answer["request_id"])


async def status_of(api: ApiClient, request_id: str) -> dict[str, Any]:
    status, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
    assert status == 200, body
    return dict(body)


async def wait_status(api: ApiClient, request_id: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await status_of(api, request_id)
        return body if body["status"] == wanted else None

    return await eventually(probe, timeout=timeout, what=f"{request_id} {wanted}")


async def test_phone_gets_every_message_once_and_reports_right(api: ApiClient, phones: SmsGateFleet) -> None:
    """Snapshots reported twice and stale ones resent: every message is sent once and ends delivered."""
    phone = await phones.add(report_repeats=2, stale_reports=True)
    ids = [await send(api, message=f"m{i}") for i in range(12)]
    for request_id in ids:
        body = await wait_status(api, request_id, "delivered")
        assert body["attempts"] == 1
    assert sorted(phone.radio) == sorted(ids)
    _, listing, _ = await api.get("/v1/devices")
    (device,) = listing["devices"]
    assert device["id"] == phone.device_id and device["online"] is True
    assert device["app_version"] == "1.68.0" and device["sims"] == [
        {"slot": 0, "carrier": "SimTel", "ready": True}
    ]


async def test_message_reaches_phone_within_one_second(api: ApiClient, phones: SmsGateFleet) -> None:
    """The API call to the phone's radio takes under 1 s: pushed over SSE, no polling interval."""
    phone = await phones.add()
    reached = asyncio.Event()
    phone.on_sent = lambda record: reached.set()
    started = time.monotonic()
    await send(api)
    async with asyncio.timeout(1.0):
        await reached.wait()
    assert time.monotonic() - started < 1.0


async def test_lost_stream_is_reopened_and_pulled(api: ApiClient, phones: SmsGateFleet) -> None:
    """A message queued while the stream is down reaches the phone once it reconnects and pulls."""
    phone = await phones.add(reconnect_delay=0.3)
    phone.drop_stream()
    await eventually(lambda: asyncio.sleep(0, not phone.connected.is_set()), what="stream lost")
    request_id = await send(api)
    await wait_status(api, request_id, "delivered")
    assert phone.radio == [request_id] and phone.streams_opened >= 2
