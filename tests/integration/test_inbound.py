"""Inbound SMS through both kinds of relay: the v1.1 ``inbound`` frame (acked once stored,
retries stored once) and the SMSGate app's signed ``sms:received`` webhook; the list API, the
``message.received`` webhook, STOP/START opt-out and opt-in, isolation and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from gateway.events import WebhookEvent
from tests.harness import ApiClient, RunningGateway, make_account
from tests.mobile_client import call, mobile_url, register, signed
from tests.relay_client import RawRelay, pair_relay
from tests.webhook_receiver import Receiver

V1_1 = ("relaygate.v1.1",)
"""Inbound SMS is protocol v1.1."""

FROM = "+998901234567"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def inbound(message_id: str, text: str, sender: str = FROM, **extra: Any) -> dict[str, Any]:
    """A v1.1 inbound frame."""
    return {
        "type": "inbound",
        "id": message_id,
        "from": sender,
        "text": text,
        "received_at": "2026-12-01T10:00:00Z",
        "sim_slot": 0,
        **extra,
    }


async def listing(api: ApiClient, **params: str) -> list[dict[str, Any]]:
    status, body, _ = await api.get("/v1/inbound", params=params)
    assert status == 200, body
    return list(body["inbound"])


async def opted_out(api: ApiClient) -> list[str]:
    _, body, _ = await api.get("/v1/recipients", params={"opted_out": "true"})
    return [r["phone"] for r in body["recipients"]]


async def test_inbound_frame_is_stored_once_acked_and_announced(
    api: ApiClient, gateway: RunningGateway, receiver: Receiver
) -> None:
    """An inbound frame gets inbound_ack after it is stored; its retry is acked and stored once;
    message.received arrives signed."""
    status, hook, _ = await api.post(
        "/v1/webhooks", json={"url": receiver.url(), "events": ["message.received"]}
    )
    assert status == 201
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V1_1)
    for _ in range(2):
        await relay.send(inbound("in-1", "Salom! Qachon ochiqsiz?"))
        assert await relay.recv() == {"type": "inbound_ack", "id": "in-1"}
    (item,) = await listing(api)
    assert item["from"] == FROM and item["text"] == "Salom! Qachon ochiqsiz?"
    assert item["device_id"] == paired["device_id"] and item["sim_slot"] == 0 and item["opt_action"] is None
    (request,) = await receiver.wait_for("/hook", 1)
    Webhook(hook["secret"]).verify(request.body, request.headers)
    event = msgspec.json.decode(request.body, type=WebhookEvent)
    assert event.data.inbound_id == item["id"] and event.data.text == item["text"]  # type: ignore[union-attr]
    await relay.close()


async def test_stop_and_start_through_both_kinds_of_relay(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway, receiver: Receiver
) -> None:
    """STOP on a WebSocket relay opts the number out; START via an SMSGate phone opts it back in;
    a local word (СТОП) works too; each fires its recipient event."""
    status, hook, _ = await api.post(
        "/v1/webhooks",
        json={"url": receiver.url(), "events": ["recipient.opted_out", "recipient.opted_in"]},
    )
    assert status == 201
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V1_1)
    await relay.send(inbound("in-stop", "  stop. "))
    assert (await relay.recv())["type"] == "inbound_ack"
    assert await opted_out(api) == [FROM]
    phone = await register(session, gateway, api)
    _, settings = await call(session, gateway, "GET", "/settings", auth=f"Bearer {phone['token']}")
    key = settings["webhooks"]["signing_key"]
    url = f"{mobile_url(gateway)}/inbound/{phone['id']}"

    async def webhook(text: str, sender: str = FROM) -> int:
        payload = {
            "messageId": "abc",
            "message": text,
            "sender": sender,
            "simNumber": 1,
            "receivedAt": f"2026-12-01T10:00:0{len(text) % 10}.000+05:00",
        }
        body = msgspec.json.encode({"event": "sms:received", "deviceId": phone["id"], "payload": payload})
        async with session.post(url, data=body, headers=signed(key, body)) as resp:
            return resp.status

    assert await webhook("Start") == 204
    assert await opted_out(api) == []
    assert await webhook("СТОП", "+998 90 765 43 21") == 204
    assert await opted_out(api) == ["+998907654321"]
    received = await receiver.wait_for("/hook", 3)
    types = [Webhook(hook["secret"]).verify(r.body, r.headers)["type"] for r in received]
    assert types == ["recipient.opted_out", "recipient.opted_in", "recipient.opted_out"]
    items = await listing(api)
    assert [i["opt_action"] for i in items] == ["opted_out", "opted_in", "opted_out"]
    assert items[1]["device_id"] == phone["id"] and items[1]["sim_slot"] == 0
    assert [i["text"] for i in await listing(api, **{"from": "+998907654321"})] == ["СТОП"]
    await relay.close()


async def test_inbound_is_per_account_and_bad_input_changes_nothing(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """Another account sees none of it; malformed frames get error frames and are not stored."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V1_1)
    bad = [
        inbound("x", "text", sender=""),
        inbound("x", "t" * 4001),
        inbound("x", "text", received_at="yesterday"),
        inbound("x", "text", sim_slot=9),
        {"type": "inbound", "id": "x", "text": "no sender", "received_at": "2026-12-01T10:00:00Z"},
        inbound("x", "nul \u0000"),
    ]
    for frame in bad:
        await relay.send(frame)
        answer = await relay.recv()
        assert answer["type"] == "error" and answer["code"] == "invalid_field", (frame, answer)
    await relay.send(inbound("ok", "hello"))
    assert (await relay.recv())["type"] == "inbound_ack"
    assert [i["text"] for i in await listing(api)] == ["hello"]
    _, other_token = await make_account(database_url, "other")
    other = api.with_token(other_token)
    assert await listing(other) == []
    assert await listing(api, since="2030-01-01T00:00:00Z") == []
    status, body, _ = await api.get("/v1/inbound", params={"from": "+1"})
    assert status == 422 and "from" in body["error"]["details"]["fields"]
    phone = await register(session, gateway, other)
    _, settings = await call(session, gateway, "GET", "/settings", auth=f"Bearer {phone['token']}")
    key = settings["webhooks"]["signing_key"]
    url = f"{mobile_url(gateway)}/inbound/{phone['id']}"
    for payload in (
        {"message": "no id", "sender": FROM},
        {"messageId": "a", "message": "no sender"},
        {"messageId": "a", "message": 5, "sender": FROM},
    ):
        body = msgspec.json.encode({"event": "sms:received", "payload": payload})
        async with session.post(url, data=body, headers=signed(key, body)) as resp:
            assert resp.status == 422, payload
    assert await listing(other) == []

    await relay.send(inbound("ok2", "again"))  # the relay is still served after all that
    assert (await relay.recv())["type"] == "inbound_ack"
    await relay.close()


async def test_replies_are_threaded_by_number(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """An inbound SMS names the latest message the account sent to that number; others name none."""
    older = (await api.post("/v1/sms/send", json={"to": FROM, "message": "first"}))[1]["request_id"]
    latest = (await api.post("/v1/sms/send", json={"to": FROM, "message": "Your order is ready"}))[1][
        "request_id"
    ]
    assert older != latest
    phone = await register(session, gateway, api)
    _, settings = await call(session, gateway, "GET", "/settings", auth=f"Bearer {phone['token']}")
    key = settings["webhooks"]["signing_key"]
    url = f"{mobile_url(gateway)}/inbound/{phone['id']}"
    for n, sender in enumerate((FROM, "+998907654321", "MyBank")):
        payload = {
            "messageId": f"m{n}",
            "message": "Rahmat!",
            "sender": sender,
            "receivedAt": "2026-12-01T10:00:00Z",
        }
        body = msgspec.json.encode({"event": "sms:received", "payload": payload})
        async with session.post(url, data=body, headers=signed(key, body)) as resp:
            assert resp.status == 204
    items = await listing(api)
    assert [(i["from"], i["in_reply_to"]) for i in items] == [
        (FROM, latest),
        ("+998907654321", None),
        ("MyBank", None),
    ]
