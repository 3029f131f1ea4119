"""The send pipeline through real sockets with hand-driven relays: accept, routing, tracking,
forward-only status, requeue on offline, retries, expiry, manual mode, idempotency, bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.harness import ApiClient, RunningGateway, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"


async def send(api: ApiClient, **body: Any) -> dict[str, Any]:
    """POST /v1/sms/send and expect it queued."""
    status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hello", **body})
    assert status == 200, answer
    assert set(answer) == {"ok", "request_id", "status", "queued_at"} and answer["status"] == "queued"
    assert answer["request_id"].startswith("req_") and answer["queued_at"].endswith("Z")
    return dict(answer)


async def status_of(api: ApiClient, request_id: str) -> dict[str, Any]:
    """GET /v1/messages/status."""
    status, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
    assert status == 200, body
    return dict(body)


async def wait_status(api: ApiClient, request_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    """Poll the status API until the message reaches ``wanted``."""
    async with asyncio.timeout(timeout):
        while True:
            body = await status_of(api, request_id)
            if body["status"] == wanted:
                return body
            await asyncio.sleep(0.02)


async def first_receiver(relays: list[RawRelay], timeout: float = 5.0) -> tuple[RawRelay, dict[str, Any]]:
    """The relay that receives the next frame, and that frame; TimeoutError if none does."""
    tasks = {asyncio.ensure_future(r.recv(timeout=timeout + 1)): r for r in relays}
    done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if not done:
        raise TimeoutError
    assert len(done) == 1
    task = done.pop()
    return tasks[task], task.result()


async def report(relay: RawRelay, message_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """Send a report and return the gateway's report_ack."""
    frame: dict[str, Any] = {
        "type": "report",
        "id": message_id,
        "status": status,
        "at": "2026-11-23T10:00:00Z",
    }
    if reason:
        frame["reason"] = reason
    await relay.send(frame)
    reply = await relay.recv()
    assert reply == {"type": "report_ack", "id": message_id, "status": status}, reply
    return reply


async def test_send_to_delivered_with_timeline(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """queued → dispatched → sent → delivered, with device name, attempts, timeline and events."""
    paired = await pair_relay(api, "Relay Device 1")
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    answer = await send(api, message="Your order #42 shipped", metadata={"order": 42}, sim_slot=0)
    command = await relay.recv()
    assert command["type"] == "send" and command["id"] == answer["request_id"]
    assert command["to"] == TO and command["message"] == "Your order #42 shipped" and command["sim_slot"] == 0
    dispatched = await status_of(api, answer["request_id"])
    assert dispatched["status"] == "dispatched" and dispatched["device_id"] == paired["device_id"]
    await relay.send({"type": "ack", "id": command["id"]})
    await report(relay, command["id"], "sent")
    await report(relay, command["id"], "delivered")
    body = await status_of(api, answer["request_id"])
    assert body["ok"] is True and body["status"] == "delivered" and body["device_name"] == "Relay Device 1"
    assert body["attempts"] == 1 and body["failure_reason"] is None and body["to"] == TO
    assert body["encoding"] == "GSM-7" and body["segments"] == 1 and body["metadata"] == {"order": 42}
    assert body["queued_at"] <= body["dispatched_at"] <= body["sent_at"] <= body["delivered_at"]
    assert [(h["attempt"], h["outcome"]) for h in body["history"]] == [(1, "delivered")]
    assert body["history"][0]["acked_at"]
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch("SELECT type, data FROM events WHERE type LIKE 'message.%' ORDER BY id")
    finally:
        await conn.close()
    assert [e["type"] for e in events] == ["message.sent", "message.delivered"]
    data = json.loads(events[1]["data"])
    assert data["request_id"] == answer["request_id"] and data["device_name"] == "Relay Device 1"
    assert data["metadata"] == {"order": 42}


async def test_status_moves_only_forward(api: ApiClient, gateway: RunningGateway) -> None:
    """Duplicate and late reports are acknowledged but never move the status back."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    answer = await send(api)
    command = await relay.recv()
    await report(relay, command["id"], "delivered")
    await report(relay, command["id"], "sent")
    await report(relay, command["id"], "delivered")
    await report(relay, command["id"], "failed", "generic_failure")
    body = await status_of(api, answer["request_id"])
    assert body["status"] == "delivered" and body["failure_reason"] is None


async def test_unicode_text_is_ucs2_with_segments(api: ApiClient, gateway: RunningGateway) -> None:
    """A text with a non-GSM character is stored as UCS-2 with the right segment count."""
    answer = await send(api, message="Ваш код: 1234. " * 6)
    body = await status_of(api, answer["request_id"])
    assert body["encoding"] == "UCS-2" and body["segments"] == 2


async def test_unacked_work_is_requeued_to_another_relay(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A relay that drops before acking loses the message to the queue: it is held for that
    relay during the grace period (its ack may have been lost), then another relay gets it."""
    running = await start_gateway(database_url, reclaim_grace=0.5)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        first = await pair_relay(api, "first")
        second = await pair_relay(api, "second")
        relay1 = await RawRelay.connect(running.relay_url, first["device_token"])
        answer = await send(api)
        command = await relay1.recv()
        assert command["id"] == answer["request_id"]
        relay1.kill()
        relay2 = await RawRelay.connect(running.relay_url, second["device_token"])
        with pytest.raises(TimeoutError):
            await relay2.recv(timeout=0.2)  # still reserved for the first relay
        command2 = await relay2.recv(timeout=3)
        assert command2["id"] == answer["request_id"]
        await report(relay2, command2["id"], "sent")
        body = await status_of(api, answer["request_id"])
        assert body["status"] == "sent" and body["device_id"] == second["device_id"] and body["attempts"] == 2
        assert [h["outcome"] for h in body["history"]] == ["relay_offline", "sent"]
    finally:
        await running.stop()


async def test_unacked_work_returns_to_its_relay_after_a_blip(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """A relay that reconnects within the grace period gets its unacked command again (it
    de-duplicates), and no other relay is offered it."""
    first = await pair_relay(api, "first")
    second = await pair_relay(api, "second")
    relay1 = await RawRelay.connect(gateway.relay_url, first["device_token"])
    answer = await send(api)
    assert (await relay1.recv())["id"] == answer["request_id"]
    relay1.kill()
    relay2 = await RawRelay.connect(gateway.relay_url, second["device_token"])
    relay1 = await RawRelay.connect(gateway.relay_url, first["device_token"])
    again = await relay1.recv()
    assert again["type"] == "send" and again["id"] == answer["request_id"]
    await relay1.send({"type": "ack", "id": again["id"]})
    await report(relay1, again["id"], "delivered")
    with pytest.raises(TimeoutError):
        await relay2.recv(timeout=0.3)
    body = await status_of(api, answer["request_id"])
    assert body["status"] == "delivered" and body["device_id"] == first["device_id"]


async def test_acked_work_waits_for_its_relay(api: ApiClient, gateway: RunningGateway) -> None:
    """Acknowledged work is never handed to another relay; the same relay may report after reconnecting."""
    first = await pair_relay(api, "first")
    second = await pair_relay(api, "second")
    relay1 = await RawRelay.connect(gateway.relay_url, first["device_token"])
    answer = await send(api)
    command = await relay1.recv()
    await relay1.send({"type": "ack", "id": command["id"]})
    await asyncio.sleep(0.1)
    relay1.kill()
    relay2 = await RawRelay.connect(gateway.relay_url, second["device_token"])
    with pytest.raises(TimeoutError):
        await relay2.recv(timeout=0.5)
    relay1 = await RawRelay.connect(gateway.relay_url, first["device_token"])
    await report(relay1, command["id"], "sent")
    body = await status_of(api, answer["request_id"])
    assert body["status"] == "sent" and body["device_id"] == first["device_id"] and body["attempts"] == 1


async def test_retryable_failure_goes_to_another_relay_up_to_the_limit(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """A retryable failure re-routes to a different relay; a final one fails with the relay's reason."""
    a = await pair_relay(api, "a")
    b = await pair_relay(api, "b")
    relay_a = await RawRelay.connect(gateway.relay_url, a["device_token"])
    relay_b = await RawRelay.connect(gateway.relay_url, b["device_token"])
    answer = await send(api)
    holder, command = await first_receiver([relay_a, relay_b])
    command_id = answer["request_id"]
    await report(holder, command_id, "failed", "no_service")
    assert command["id"] == command_id
    retry_relay = relay_b if holder is relay_a else relay_a
    command = await retry_relay.recv()
    assert command["id"] == command_id
    await report(retry_relay, command_id, "failed", "invalid_destination")
    body = await wait_status(api, command_id, "failed")
    assert body["failure_reason"] == "invalid_destination" and body["attempts"] == 2
    assert [h["reason"] for h in body["history"]] == ["no_service", "invalid_destination"]


async def test_ttl_expiry_without_relays(api: ApiClient, gateway: RunningGateway, database_url: str) -> None:
    """With no relay online a message fails with no_device when its TTL runs out, and message.failed fires."""
    answer = await send(api, ttl_seconds=10)
    conn = await asyncpg.connect(database_url)
    try:
        # Mock time: move the stored expiry, and the in-memory one, into the past.
        await conn.execute("UPDATE messages SET expires_at = now() WHERE id = $1", answer["request_id"])
    finally:
        await conn.close()
    pipeline = gateway.gateway.pipeline
    assert pipeline is not None
    gateway.clock.advance(3600)  # mock time: the gateway's clock jumps past the TTL
    pipeline.wake()
    body = await wait_status(api, answer["request_id"], "failed")
    assert body["failure_reason"] == "no_device"


async def test_manual_mode_pins_to_the_named_relay(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """device_id pins a message: only that relay gets it, and it waits while that relay is offline."""
    a = await pair_relay(api, "a")
    b = await pair_relay(api, "b")
    relay_a = await RawRelay.connect(gateway.relay_url, a["device_token"])
    answer = await send(api, device_id=b["device_id"])
    with pytest.raises(TimeoutError):
        await relay_a.recv(timeout=0.4)
    assert (await status_of(api, answer["request_id"]))["status"] == "queued"
    relay_b = await RawRelay.connect(gateway.relay_url, b["device_token"])
    assert (await relay_b.recv())["id"] == answer["request_id"]

    _, manual_token = await make_account(database_url, "manual", relay_mode="manual")
    manual = api.with_token(manual_token)
    status, body, _ = await manual.post("/v1/sms/send", json={"to": TO, "message": "x"})
    assert status == 422 and "device_id" in body["error"]["details"]["fields"]


async def test_invalid_device_cases(api: ApiClient, gateway: RunningGateway, database_url: str) -> None:
    """Unknown, another account's, or disabled relays are invalid_device; nothing is queued."""
    mine = await pair_relay(api)
    _, other_token = await make_account(database_url, "other")
    theirs = await pair_relay(api.with_token(other_token))
    await api.request("PATCH", f"/v1/devices/{mine['device_id']}", json={"enabled": False})
    for device_id in ["dev_01ARZ3NDEKTSV4RRFFQ69G5FAV", theirs["device_id"], mine["device_id"], "nonsense"]:
        status, body, _ = await api.post(
            "/v1/sms/send", json={"to": TO, "message": "x", "device_id": device_id}
        )
        assert status == 422 and body["error"]["code"] == "invalid_device", (device_id, body)
    _, listing, _ = await api.get("/v1/messages")
    assert listing["messages"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": TO}, "message"),
        ({"to": TO, "message": ""}, "message"),
        ({"to": TO, "message": "   "}, "message"),
        ({"to": TO, "message": "x" * 1601}, "message"),
        ({"to": "12", "message": "x"}, "to"),
        ({"to": "+99890", "message": "x"}, "to"),
        ({"to": "0901234567", "message": "x"}, "to"),
        ({"to": 998901234567, "message": "x"}, "to"),
        ({"to": TO, "message": "x", "priority": "urgent"}, "priority"),
        ({"to": TO, "message": "x", "ttl_seconds": 0}, "ttl_seconds"),
        ({"to": TO, "message": "x", "ttl_seconds": "60"}, "ttl_seconds"),
        ({"to": TO, "message": "x", "sim_slot": 9}, "sim_slot"),
        ({"to": TO, "message": "x", "metadata": [1]}, "metadata"),
        ({"to": TO, "message": "x", "metadata": {"k": "v" * 2000}}, "metadata"),
        ({"to": TO, "message": "x", "bcc": "+1"}, "bcc"),
    ],
)
async def test_send_bad_input_queues_nothing(api: ApiClient, payload: dict[str, Any], field: str) -> None:
    """Each bad field is a validation_error naming it, and nothing is queued."""
    status, body, _ = await api.post("/v1/sms/send", json=payload)
    assert status == 422 and body["error"]["code"] == "validation_error", body
    assert field in body["error"]["details"]["fields"], body
    _, listing, _ = await api.get("/v1/messages")
    assert listing["messages"] == []


async def test_national_numbers_use_the_account_region(api: ApiClient, database_url: str) -> None:
    """With a default region, a national number is normalised to E.164."""
    _, token = await make_account(database_url, "uz", region="UZ")
    answer = await send(api.with_token(token), to="90 123 45 67")
    body = await status_of(api.with_token(token), answer["request_id"])
    assert body["to"] == TO


async def test_idempotency_key_makes_one_message(api: ApiClient, gateway: RunningGateway) -> None:
    """50 concurrent requests with one key make one message; another body with the key conflicts."""
    headers = {"Idempotency-Key": "order-42-shipped"}
    body = {"to": TO, "message": "Order 42 shipped"}
    results = await asyncio.gather(*(api.post("/v1/sms/send", json=body, headers=headers) for _ in range(50)))
    assert {r[0] for r in results} == {200}
    assert len({r[1]["request_id"] for r in results}) == 1
    _, listing, _ = await api.get("/v1/messages")
    assert len(listing["messages"]) == 1
    status, conflict, _ = await api.post("/v1/sms/send", json={**body, "message": "other"}, headers=headers)
    assert status == 409 and conflict["error"]["code"] == "conflict"
    _, other_token = await make_account(gateway.database_url, "other")
    status, other, _ = await api.with_token(other_token).post("/v1/sms/send", json=body, headers=headers)
    assert status == 200 and other["request_id"] != results[0][1]["request_id"]


async def test_status_and_list_bad_input_and_isolation(api: ApiClient, gateway: RunningGateway) -> None:
    """Unknown or foreign request ids are not_found; list filters and cursors validate and work."""
    answers = [await send(api, message=f"m{i}") for i in range(3)]
    for bad in ["", "req_nope", "x" * 300, "req_01ARZ3NDEKTSV4RRFFQ69G5FAV"]:
        status, body, _ = await api.get("/v1/messages/status", params={"request_id": bad})
        assert status in (404, 422) and body["ok"] is False
    _, other_token = await make_account(gateway.database_url, "other")
    status, _, _ = await api.with_token(other_token).get(
        "/v1/messages/status", params={"request_id": answers[0]["request_id"]}
    )
    assert status == 404
    status, page, _ = await api.get("/v1/messages", params={"limit": "2"})
    assert [m["request_id"] for m in page["messages"]] == [a["request_id"] for a in answers[::-1][:2]]
    status, page2, _ = await api.get("/v1/messages", params={"limit": "2", "cursor": page["next_cursor"]})
    assert [m["request_id"] for m in page2["messages"]] == [answers[0]["request_id"]] and page2[
        "next_cursor"
    ] is None
    status, filtered, _ = await api.get(
        "/v1/messages", params={"status": "queued", "to": TO, "since": "2020-01-01T00:00:00Z"}
    )
    assert status == 200 and len(filtered["messages"]) == 3
    for params in [{"status": "lost"}, {"since": "yesterday"}, {"to": "nope"}]:
        status, body, _ = await api.get("/v1/messages", params=params)
        assert status == 422, params


async def test_expired_subscription_cannot_send(api: ApiClient, database_url: str) -> None:
    """subscription_expired (402) on send; reading still works."""
    from datetime import date, timedelta

    _, token = await make_account(database_url, "late", expires=date.today() - timedelta(days=1))
    client = api.with_token(token)
    status, body, _ = await client.post("/v1/sms/send", json={"to": TO, "message": "x"})
    assert status == 402 and body["error"]["code"] == "subscription_expired"
    assert (await client.get("/v1/messages"))[0] == 200


async def test_retries_stop_at_max_attempts(api: ApiClient, gateway: RunningGateway) -> None:
    """After max_attempts (3) retryable failures the message fails with the last relay's reason."""
    relays = []
    for name in ("a", "b", "c", "d"):
        paired = await pair_relay(api, name)
        relays.append(await RawRelay.connect(gateway.relay_url, paired["device_token"]))
    answer = await send(api)
    for _ in range(3):
        holder, command = await first_receiver(relays)
        assert command["id"] == answer["request_id"]
        await report(holder, command["id"], "failed", "radio_off")
    body = await wait_status(api, answer["request_id"], "failed")
    assert body["attempts"] == 3 and body["failure_reason"] == "radio_off"
    assert len({h["device_id"] for h in body["history"]}) == 3
    with pytest.raises(TimeoutError):
        await first_receiver(relays, timeout=0.5)
