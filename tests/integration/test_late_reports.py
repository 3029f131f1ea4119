"""Late reports (issue 11 item 4): a sent/delivered report that arrives after the gateway failed
an acknowledged message with relay_timeout is acknowledged, recorded beside the failure, shown
in the status API and announced with message.late_report; the status stays failed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
from standardwebhooks.webhooks import Webhook

from tests.harness import ApiClient, RunningGateway
from tests.relay_client import RawRelay, pair_relay
from tests.webhook_receiver import Receiver

TO = "+998901234567"
AT = "2026-11-23T10:00:00Z"


async def _status(api: ApiClient, request_id: str) -> dict[str, Any]:
    status, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
    assert status == 200, body
    return dict(body)


async def _report(relay: RawRelay, message_id: str, status: str) -> None:
    """Send a report and expect its report_ack."""
    await relay.send({"type": "report", "id": message_id, "status": status, "at": AT})
    assert await relay.recv() == {"type": "report_ack", "id": message_id, "status": status}


async def _expire_now(gateway: RunningGateway, api: ApiClient, request_id: str) -> dict[str, Any]:
    """Mock time: move the message's expiry into the past, let the gateway's clock jump a minute
    (past the 10 s TTL, within the 5 minutes a webhook receiver allows its signatures), and wait
    for the failure."""
    database_url, pipeline = gateway.database_url, gateway.gateway.pipeline
    assert pipeline is not None
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE messages SET expires_at = now() WHERE id = $1", request_id)
    finally:
        await conn.close()
    gateway.clock.advance(60)
    pipeline.wake()
    async with asyncio.timeout(5):
        while (body := await _status(api, request_id))["status"] != "failed":
            await asyncio.sleep(0.02)
    return body


async def _events(database_url: str, event_type: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE type = $1 ORDER BY id", event_type)
    finally:
        await conn.close()
    return [json.loads(r["data"]) for r in rows]


async def test_a_report_after_relay_timeout_is_recorded_and_announced(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """acked → relay_timeout → late sent, late delivered: each acked, status stays failed with
    relay_timeout, late_report (message, history, list) and one message.late_report per step;
    duplicates and a sent after delivered change nothing."""
    receiver = Receiver()
    await receiver.start()
    try:
        status, hook, _ = await api.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["message.late_report"]}
        )
        assert status == 201, hook
        paired = await pair_relay(api)
        relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
        status, answer, _ = await api.post(
            "/v1/sms/send", json={"to": TO, "message": "hello", "ttl_seconds": 10}
        )
        assert status == 200, answer
        request_id = answer["request_id"]
        command = await relay.recv()
        await relay.send({"type": "ack", "id": command["id"]})
        async with asyncio.timeout(5):
            while (await _status(api, request_id))["history"][0]["acked_at"] is None:
                await asyncio.sleep(0.02)
        failed = await _expire_now(gateway, api, request_id)
        assert failed["failure_reason"] == "relay_timeout" and failed["late_report"] is None

        await _report(relay, request_id, "sent")
        body = await _status(api, request_id)
        assert body["status"] == "failed" and body["failure_reason"] == "relay_timeout"
        late = body["late_report"]
        assert late["status"] == "sent" and late["device_id"] == paired["device_id"]
        assert late["at"].endswith("Z") and late["at"] >= body["failed_at"]
        assert body["history"][-1]["late_report"] == late
        assert body["sent_at"] is None  # the timeline keeps what the gateway decided

        await _report(relay, request_id, "sent")  # a duplicate: acked, nothing new
        await _report(relay, request_id, "delivered")
        await _report(relay, request_id, "delivered")
        await _report(relay, request_id, "sent")  # late and out of order: nothing moves back
        body = await _status(api, request_id)
        assert body["status"] == "failed" and body["late_report"]["status"] == "delivered"
        _, page, _ = await api.get("/v1/messages", params={"status": "failed"})
        assert page["messages"][0]["late_report"] == body["late_report"]

        events = await _events(database_url, "message.late_report")
        assert [e["late_report"]["status"] for e in events] == ["sent", "delivered"]
        assert all(e["status"] == "failed" and e["failure_reason"] == "relay_timeout" for e in events)
        assert events[0]["request_id"] == request_id and events[0]["device_id"] == paired["device_id"]
        assert len(await _events(database_url, "message.failed")) == 1

        arrived = await receiver.wait_for("/hook", 2)
        payloads = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in arrived]
        assert [p["type"] for p in payloads] == ["message.late_report"] * 2
        hooked = payloads[1]["data"]["late_report"]
        assert {k: hooked[k] for k in ("status", "device_id")} == {
            "status": "delivered",
            "device_id": paired["device_id"],
        }
        assert hooked["at"][:23] == body["late_report"]["at"][:23]  # events carry milliseconds
    finally:
        await receiver.stop()


async def test_late_reports_from_elsewhere_are_ignored(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """A sent report for a failed message from a relay it was never handed to, or for a message
    that never reached a relay, is acked and records nothing."""
    paired = await pair_relay(api, "first")
    other = await pair_relay(api, "other")
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hello", "ttl_seconds": 10})
    assert status == 200, answer
    request_id = answer["request_id"]
    command = await relay.recv()
    await relay.send({"type": "ack", "id": command["id"]})
    await relay.close()
    await _expire_now(gateway, api, request_id)
    intruder = await RawRelay.connect(gateway.relay_url, other["device_token"])
    await _report(intruder, request_id, "delivered")
    assert (await _status(api, request_id))["late_report"] is None
    # Never dispatched (no relay online): failed with no_device; nobody can report it late.
    await intruder.close()
    _, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "x", "ttl_seconds": 10})
    lonely = answer["request_id"]
    body = await _expire_now(gateway, api, lonely)
    assert body["failure_reason"] == "no_device"
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    await _report(relay, lonely, "sent")
    assert (await _status(api, lonely))["late_report"] is None
    assert await _events(database_url, "message.late_report") == []
