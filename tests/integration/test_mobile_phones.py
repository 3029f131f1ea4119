"""SMSGate phones as relays: registration by code, SSE push, pulls, snapshot reports, losing
the stream, grace, and mixed fleets with WebSocket relays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from gateway.sim.relay import RelayFleet
from gateway.sim.smsgate import SmsGateFleet
from tests.harness import (
    ApiClient,
    RunningGateway,
    TcpProxy,
    eventually,
    fleet_options,
    make_account,
    start_gateway,
)
from tests.mobile_client import RawStream, call, register, signed, snapshot

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
        {"slot": 0, "carrier": "SimTel", "ready": True, "per_day": None, "sent_last_day": 0}
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


async def test_mixed_fleet_shares_one_accounts_load(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str], phones: SmsGateFleet
) -> None:
    """WebSocket relays and SMSGate phones of one account both take part of its traffic."""
    ws_fleet = await RelayFleet.start(fleet_options(gateway, account[1], 1))
    try:
        phone = await phones.add(sent_delay=0.05)
        ids = [await send(api, message=f"mix {i}") for i in range(24)]
        for request_id in ids:
            await wait_status(api, request_id, "delivered")
        by_ws = {r["id"] for r in ws_fleet.sent}
        assert by_ws and phone.radio, (len(by_ws), len(phone.radio))
        assert by_ws | set(phone.radio) == set(ids) and not by_ws & set(phone.radio)
    finally:
        await ws_fleet.stop()


async def test_pulled_message_never_goes_to_another_phone(
    session: aiohttp.ClientSession, database_url: str, account: tuple[str, str]
) -> None:
    """Once pulled, a message waits for that phone even after it went offline; unpulled work moves on."""
    running = await start_gateway(database_url, mobile_offline_grace=0.2, reclaim_grace=0.2)
    api = ApiClient(session, running.base_url, account[1])
    fleet = SmsGateFleet(session, running.base_url, account[1])
    try:
        first = await register(session, running, api)
        stream = await RawStream.open(session, running, first["token"])
        assert stream.status == 200
        pulled = await send(api, message="pulled")
        assert await stream.next() == ("MessageEnqueued", None)
        status, items = await call(session, running, "GET", "/message", auth=f"Bearer {first['token']}")
        assert status == 200 and [m["id"] for m in items] == [pulled]
        item = items[0]
        assert item["phoneNumbers"] == [TO] and item["textMessage"] == {"text": "pulled"}
        assert item["state"] == "Pending" and item["isEncrypted"] is False and "+00:00" in item["validUntil"]
        unpulled = await send(api, message="not pulled")
        assert await stream.next() == ("MessageEnqueued", None)
        await stream.close()  # gone before pulling the second one
        other = await fleet.add()
        await wait_status(api, unpulled, "delivered")
        assert other.radio == [unpulled]
        body = await status_of(api, pulled)
        assert body["status"] == "dispatched" and body["device_id"] == first["id"]
        # the first phone comes back: the pull offers the message again; it reports it
        status, items = await call(session, running, "GET", "/message", auth=f"Bearer {first['token']}")
        assert [m["id"] for m in items] == [pulled]
        report = [snapshot(pulled, TO, "Delivered", Sent="2026-12-01T10:00:00.000+05:00")]
        status, _ = await call(
            session, running, "PATCH", "/message", auth=f"Bearer {first['token']}", body=report
        )
        assert status == 204
        body = await wait_status(api, pulled, "delivered")
        assert body["attempts"] == 1 and other.radio == [unpulled]
    finally:
        await fleet.stop()
        await running.stop()


async def test_failure_text_maps_to_reasons_and_retries_elsewhere(
    api: ApiClient, gateway: RunningGateway, phones: SmsGateFleet
) -> None:
    """A recognisable radio error is retryable (another phone sends it); unknown text is final."""
    failing = await phones.add(failure_error="Send result: RESULT_ERROR_NO_SERVICE")
    request_id = await send(api)
    await eventually(lambda: asyncio.sleep(0, request_id in failing.radio), what="first attempt")
    good = await phones.add()
    body = await wait_status(api, request_id, "delivered")
    assert body["attempts"] == 2 and good.radio == [request_id]
    assert body["history"][0]["outcome"] == "failed" and body["history"][0]["reason"] == "no_service"
    await good.stop()
    failing.failure_error = "sendSMS: something odd"
    final = await send(api)
    body = await wait_status(api, final, "failed")
    assert (
        body["failure_reason"] == "smsgate_error"
        and body["failure_reason_detail"] == "sendSMS: something odd"
    )


async def test_settings_webhooks_and_signed_ping_telemetry(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Settings push SSE_ONLY and a signing key; the phone's signed system:ping becomes telemetry."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    status, settings = await call(session, gateway, "GET", "/settings", auth=auth)
    assert status == 200 and settings["gateway"] == {"notification_channel": "SSE_ONLY"}
    key = settings["webhooks"]["signing_key"]
    assert len(key) == 64 and settings["messages"]["limit_value"] == 30
    status, hooks = await call(session, gateway, "GET", "/webhooks", auth=auth)
    url = f"{gateway.base_url}/mobile/v1/inbound/{phone['id']}"
    assert status == 200 and {h["event"] for h in hooks} == {
        "sms:received",
        "sms:sent",
        "sms:delivered",
        "sms:failed",
        "system:ping",
    }
    assert all(h["url"] == url for h in hooks)
    status, device = await call(session, gateway, "GET", "/device", auth=auth)
    assert status == 200 and device["externalIp"] == "127.0.0.1"
    stream = await RawStream.open(session, gateway, phone["token"])
    ping = {
        "event": "system:ping",
        "deviceId": phone["id"],
        "payload": {
            "health": {
                "status": "pass",
                "version": "1.68.0",
                "checks": {
                    "battery:level": {"observedValue": 57},
                    "battery:charging": {"observedValue": 2},
                    "connection:status": {"observedValue": 1},
                    "connection:transport": {"observedValue": 2},
                },
            }
        },
    }
    raw = msgspec.json.encode(ping)
    async with session.post(url, data=raw, headers=signed(key, raw)) as resp:
        assert resp.status == 204
    _, listing, _ = await api.get("/v1/devices")
    (view,) = listing["devices"]
    assert (view["battery"], view["charging"], view["network"], view["online"]) == (57, True, "wifi", True)
    await stream.close()


async def test_cancel_of_a_message_an_smsgate_phone_pulled(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """DELETE /v1/messages/{id} of a message a phone pulled: MessageCancelled on its stream and
    Cancelling on its next pull; its Cancelled snapshot ends the message cancelled. A Cancelled
    nobody asked for (cancelled on the phone) ends it failed with reason cancelled."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    stream = await RawStream.open(session, gateway, phone["token"])
    pulled = []
    for text in ("first", "second"):
        sent = await send(api, message=text)
        assert await stream.next() == ("MessageEnqueued", None)
        _, items = await call(session, gateway, "GET", "/message", auth=auth)
        assert sent in [m["id"] for m in items]
        pulled.append(sent)
    request_id, other = pulled
    status, body, _ = await api.request("DELETE", f"/v1/messages/{request_id}")
    assert status == 202 and body["status"] == "dispatched", body
    assert await stream.next() == ("MessageCancelled", {"messageId": request_id})
    _, items = await call(session, gateway, "GET", "/message", auth=auth)
    assert (request_id, "Cancelling") in [(m["id"], m["state"]) for m in items]
    status, _ = await call(
        session,
        gateway,
        "PATCH",
        "/message",
        auth=auth,
        body=[snapshot(request_id, TO, "Cancelled"), snapshot(other, TO, "Cancelled")],
    )
    assert status == 204
    assert (await wait_status(api, request_id, "cancelled"))["status"] == "cancelled"
    assert (await wait_status(api, other, "failed"))["failure_reason"] == "cancelled"
    await stream.close()


async def test_cancel_of_a_message_an_smsgate_phone_never_pulled(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """A message dispatched to a phone that has not pulled it yet is cancelled at once: it
    leaves the phone's outbox, and its next pull does not carry it."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    stream = await RawStream.open(session, gateway, phone["token"])
    request_id = await send(api)
    assert await stream.next() == ("MessageEnqueued", None)
    status, body, _ = await api.request("DELETE", f"/v1/messages/{request_id}")
    assert status in (200, 202), body
    assert (await wait_status(api, request_id, "cancelled"))["status"] == "cancelled"
    _, items = await call(session, gateway, "GET", "/message", auth=auth)
    assert items == []
    await stream.close()


async def test_new_phone_is_told_to_fetch_settings_and_webhooks_then_receives(
    api: ApiClient, phones: SmsGateFleet
) -> None:
    """A phone's first stream carries SettingsUpdated and WebhooksUpdated; with the key and the
    URLs it fetched, its signed sms:received and system:ping land in relaygate."""
    phone = await phones.add()
    async with asyncio.timeout(5):
        await phone.configured.wait()
        await phone.hooked.wait()
    assert phone.signing_key and set(phone.webhooks) >= {"sms:received", "system:ping"}
    first, later = "2026-12-01T10:00:00.000+05:00", "2026-12-01T10:05:00.000+05:00"
    for received_at in (first, first, later):  # a retry of the first, then the same text again
        assert await phone.receive_sms("+998901112233", "Qachon yetkazasiz?", received_at=received_at) == 204
    status, body, _ = await api.get("/v1/inbound")
    assert status == 200 and [i["text"] for i in body["inbound"]] == ["Qachon yetkazasiz?"] * 2
    assert await phone.ping(battery=33, charging=True) == 204
    _, listing, _ = await api.get("/v1/devices")
    assert (listing["devices"][0]["battery"], listing["devices"][0]["charging"]) == (33, True)


async def test_pulled_message_is_offered_again_after_a_gateway_restart(
    session: aiohttp.ClientSession, database_url: str, account: tuple[str, str]
) -> None:
    """The ack of a pull is stored before the answer: after a restart the same phone is offered
    the message again (and no other phone), and its report still lands."""
    running = await start_gateway(database_url)
    api = ApiClient(session, running.base_url, account[1])
    phone = await register(session, running, api)
    auth = f"Bearer {phone['token']}"
    stream = await RawStream.open(session, running, phone["token"])
    request_id = await send(api)
    assert await stream.next() == ("MessageEnqueued", None)
    _, items = await call(session, running, "GET", "/message", auth=auth)
    assert [m["id"] for m in items] == [request_id]
    await stream.close()
    await running.stop()
    running = await start_gateway(database_url)
    api = ApiClient(session, running.base_url, account[1])
    try:
        _, items = await call(session, running, "GET", "/message", auth=auth)
        assert [(m["id"], m["textMessage"]["text"]) for m in items] == [(request_id, "hello")]
        report = [snapshot(request_id, TO, "Sent", Sent="2026-12-01T10:00:00.000+00:00")]
        assert (await call(session, running, "PATCH", "/message", auth=auth, body=report))[0] == 204
        await wait_status(api, request_id, "sent")
        _, items = await call(session, running, "GET", "/message", auth=auth)
        assert items == []
    finally:
        await running.stop()


async def test_a_pull_whose_ack_cannot_be_stored_is_answered_503_then_stored(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """With the database cut, a pull gets 503 (no answer holds an unstored ack); once it is back
    the next pull stores the ack first, then answers the message."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    running = await start_gateway(proxy.url)
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        phone = await register(session, running, api)
        auth = f"Bearer {phone['token']}"
        stream = await RawStream.open(session, running, phone["token"])
        request_id = await send(api)
        assert await stream.next() == ("MessageEnqueued", None)
        await proxy.stop()
        status, answer = await call(session, running, "GET", "/message", auth=auth)
        assert status == 503 and answer["error"]["code"] == "unavailable", answer
        await proxy.start()
        status, items = await call(session, running, "GET", "/message", auth=auth)
        assert status == 200 and [m["id"] for m in items] == [request_id]
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT acked_at FROM messages WHERE id = $1", request_id) is not None
        finally:
            await conn.close()
        await stream.close()
    finally:
        await running.stop()
        await proxy.stop()
