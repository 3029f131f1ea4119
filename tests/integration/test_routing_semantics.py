"""Routing and delivery semantics through real sockets: why a message expired (no_device versus
expired, with failure_reason_detail), the report's ``at``, reports for unknown ids, SIM
readiness and slots, limits in ``welcome`` and ``GET /v1/devices``, and what
RELAYGATE_MAX_ATTEMPTS counts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.harness import ApiClient, RunningGateway, make_account, parse_time, start_gateway
from tests.integration.test_send_pipeline import TO, first_receiver, report, send, status_of, wait_status
from tests.relay_client import HEARTBEAT, HELLO, RawRelay, pair_relay


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sims(*slots: tuple[int, bool]) -> list[dict[str, Any]]:
    return [{"slot": slot, "carrier": "TestTel", "ready": ready} for slot, ready in slots]


async def _connect(gateway: RunningGateway, token: str, sims: list[dict[str, Any]]) -> RawRelay:
    """A relay whose hello declares ``sims``."""
    relay = await RawRelay.connect(gateway.relay_url, token, hello=False)
    await relay.send({**HELLO, "sims": sims})
    assert (await relay.recv())["type"] == "welcome"
    return relay


async def wait_acked(api: ApiClient, request_id: str) -> None:
    """Until the status API shows the current hand-over acknowledged."""
    async with asyncio.timeout(5):
        while not (await status_of(api, request_id))["history"][-1]["acked_at"]:
            await asyncio.sleep(0.02)


def _expire_now(gateway: RunningGateway) -> None:
    """Mock time: the gateway's clock jumps an hour ahead, past every test TTL."""
    pipeline = gateway.gateway.pipeline
    assert pipeline is not None
    gateway.clock.advance(3600)
    pipeline.wake()


async def test_expiry_says_no_device_only_when_no_relay_was_online(
    api: ApiClient, gateway: RunningGateway, session: aiohttp.ClientSession, database_url: str
) -> None:
    """After a retryable failure with no other relay free, and for a pin to an offline relay
    while another is online, the message expires as expired with a detail naming the last
    attempt or the pin; no_device only for an account with no relay online."""
    online = await pair_relay(api, "online")
    offline = await pair_relay(api, "offline")
    relay = await RawRelay.connect(gateway.relay_url, online["device_token"])
    retried = await send(api, ttl_seconds=10)
    command = await relay.recv()
    assert command["id"] == retried["request_id"]
    await relay.send({"type": "ack", "id": command["id"]})
    await report(relay, command["id"], "failed", "radio_off")
    pinned = await send(api, ttl_seconds=10, device_id=offline["device_id"])
    silent = await send(api, ttl_seconds=10, device_id=online["device_id"])
    assert (await relay.recv())["id"] == silent["request_id"]
    await relay.send({"type": "ack", "id": silent["request_id"]})
    await wait_acked(api, silent["request_id"])
    _, lonely_token = await make_account(database_url, "lonely")
    lonely = ApiClient(session, gateway.base_url, lonely_token)
    await pair_relay(lonely, "never connected")
    orphan = await send(lonely, ttl_seconds=10)
    _expire_now(gateway)

    body = await wait_status(api, retried["request_id"], "failed")
    assert body["failure_reason"] == "expired"
    assert body["failure_reason_detail"] == f"last attempt: radio_off on {online['device_id']}"
    assert [(h["outcome"], h["reason"]) for h in body["history"]] == [("failed", "radio_off")]
    body = await wait_status(api, pinned["request_id"], "failed")
    assert body["failure_reason"] == "expired"
    assert body["failure_reason_detail"] == f"pinned relay {offline['device_id']} was not available"
    body = await wait_status(api, silent["request_id"], "failed")
    assert body["failure_reason"] == "relay_timeout"
    assert body["failure_reason_detail"] == f"acknowledged by {online['device_id']}, never reported"
    body = await wait_status(lonely, orphan["request_id"], "failed")
    assert body["failure_reason"] == "no_device"
    assert body["failure_reason_detail"] == "no relay of the account was online and ready while it waited"
    status, listing, _ = await api.get("/v1/messages", params={"status": "failed"})
    assert status == 200
    details = {m["request_id"]: m["failure_reason_detail"] for m in listing["messages"]}
    assert details[retried["request_id"]] == f"last attempt: radio_off on {online['device_id']}"
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch(
            "SELECT data->>'request_id' AS id, data->>'failure_reason' AS reason,"
            " data->>'failure_reason_detail' AS detail FROM events WHERE type = 'message.failed'"
        )
    finally:
        await conn.close()
    assert sorted(e["reason"] for e in events) == ["expired", "expired", "no_device", "relay_timeout"]
    by_id = {e["id"]: e["detail"] for e in events}
    assert by_id[retried["request_id"]] == f"last attempt: radio_off on {online['device_id']}"


async def test_report_at_is_used_within_the_clock_skew_allowance(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """The report's ``at`` becomes sent_at/delivered_at when plausible, bounded to
    [dispatched_at, receive time]; more than 5 minutes off, the gateway's time is used."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])

    async def dispatched() -> tuple[str, datetime]:
        answer = await send(api)
        command = await relay.recv()
        await relay.send({"type": "ack", "id": command["id"]})
        body = await status_of(api, answer["request_id"])
        return command["id"], parse_time(body["dispatched_at"])

    async def report_at(message_id: str, status: str, at: datetime) -> tuple[datetime, datetime]:
        before = datetime.now(UTC)
        await relay.send({"type": "report", "id": message_id, "status": status, "at": _rfc3339(at)})
        assert (await relay.recv()) == {"type": "report_ack", "id": message_id, "status": status}
        return before, datetime.now(UTC)

    exact, dispatched_at = await dispatched()
    at = dispatched_at + (datetime.now(UTC) - dispatched_at) / 2
    await report_at(exact, "sent", at)
    before, after = await report_at(exact, "delivered", datetime.now(UTC) + timedelta(minutes=3))
    body = await status_of(api, exact)
    assert parse_time(body["sent_at"]) == at  # the phone's own time, kept to the microsecond
    assert before <= parse_time(body["delivered_at"]) <= after  # a little ahead: bounded to receipt
    assert parse_time(body["history"][0]["finished_at"]) == parse_time(body["delivered_at"])

    behind, dispatched_at = await dispatched()
    await report_at(behind, "sent", dispatched_at - timedelta(minutes=2))
    assert parse_time((await status_of(api, behind))["sent_at"]) == dispatched_at  # never before dispatch

    for skewed_at in (timedelta(minutes=10), -timedelta(minutes=10)):
        skewed, dispatched_at = await dispatched()
        before, after = await report_at(skewed, "sent", dispatched_at + skewed_at)
        assert before <= parse_time((await status_of(api, skewed))["sent_at"]) <= after  # server time


async def test_reports_for_unknown_ids_are_acked_and_change_nothing(
    api: ApiClient, gateway: RunningGateway, session: aiohttp.ClientSession, database_url: str
) -> None:
    """A report for an id the gateway does not know, or for a message held by another relay
    (of another account even), is acknowledged so the relay drops it, and stores nothing."""
    mine = await pair_relay(api, "mine")
    relay = await RawRelay.connect(gateway.relay_url, mine["device_token"])
    _, other_token = await make_account(database_url, "other")
    other = ApiClient(session, gateway.base_url, other_token)
    theirs = await pair_relay(other, "theirs")
    their_relay = await RawRelay.connect(gateway.relay_url, theirs["device_token"])
    their_message = await send(other)
    assert (await their_relay.recv())["id"] == their_message["request_id"]
    for message_id in ("req_01ZZZZZZZZZZZZZZZZZZZZZZZZ", "not-even-an-id", their_message["request_id"]):
        for status, reason in (("sent", None), ("delivered", None), ("failed", "radio_off")):
            await report(relay, message_id, status, reason)
    body = await status_of(other, their_message["request_id"])
    assert body["status"] == "dispatched" and body["device_id"] == theirs["device_id"]
    assert [h["outcome"] for h in body["history"]] == [None]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE type LIKE 'message.%'") == 0
    finally:
        await conn.close()


async def test_sim_readiness_and_slots(api: ApiClient, gateway: RunningGateway) -> None:
    """A relay whose only SIM is not ready gets no work until a heartbeat says it is; a slot only
    goes to a relay with that slot ready; a pinned relay refuses a slot it did not declare."""
    single = await pair_relay(api, "single")
    dual = await pair_relay(api, "dual")
    relay = await _connect(gateway, single["device_token"], _sims((0, False)))
    waiting = await send(api)
    with pytest.raises(TimeoutError):
        await relay.recv(timeout=0.3)
    assert (await status_of(api, waiting["request_id"]))["status"] == "queued"
    await relay.send({**HEARTBEAT, "sims": _sims((0, True))})
    assert (await relay.recv())["id"] == waiting["request_id"]

    dual_relay = await _connect(gateway, dual["device_token"], _sims((0, True), (1, True)))
    on_slot_1 = await send(api, sim_slot=1)
    command = await dual_relay.recv()
    assert command["id"] == on_slot_1["request_id"] and command["sim_slot"] == 1

    status, body, _ = await api.post(
        "/v1/sms/send", json={"to": TO, "message": "x", "device_id": single["device_id"], "sim_slot": 1}
    )
    assert status == 422 and body["error"]["code"] == "invalid_device", body
    assert body["error"]["details"] == {
        "device_id": single["device_id"],
        "sim_slot": 1,
        "declared_slots": [0],
    }
    pinned = await send(api, device_id=single["device_id"], sim_slot=0)
    assert (await relay.recv())["id"] == pinned["request_id"]


async def test_limits_reach_the_relay_and_the_devices_list(api: ApiClient, gateway: RunningGateway) -> None:
    """welcome carries the relay's effective per-minute and per-day limits; GET /v1/devices shows
    the effective numbers and which of them are defaults."""
    tuned = await pair_relay(api, "tuned")
    plain = await pair_relay(api, "plain")
    status, _, _ = await api.request(
        "PATCH", f"/v1/devices/{tuned['device_id']}", json={"per_minute_limit": 20, "per_day_limit": 500}
    )
    assert status == 200
    welcomes = {}
    for paired in (tuned, plain):
        relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], hello=False)
        await relay.send(HELLO)
        welcomes[paired["device_id"]] = await relay.recv()
    assert welcomes[tuned["device_id"]]["per_minute_limit"] == 20
    assert welcomes[tuned["device_id"]]["per_day_limit"] == 500
    assert welcomes[plain["device_id"]]["per_minute_limit"] == 30
    assert welcomes[plain["device_id"]]["per_day_limit"] is None
    assert welcomes[plain["device_id"]]["max_in_flight"] == 10
    _, listing, _ = await api.get("/v1/devices")
    limits = {d["id"]: d["limits"] for d in listing["devices"]}
    assert limits[tuned["device_id"]] == {
        "max_in_flight": 10,
        "per_minute": 20,
        "per_day": 500,
        "defaults": ["max_in_flight"],
        "sim_per_day": {},
    }
    assert limits[plain["device_id"]] == {
        "max_in_flight": 10,
        "per_minute": 30,
        "per_day": None,
        "defaults": ["max_in_flight", "per_minute", "per_day"],
        "sim_per_day": {},
    }


async def test_max_attempts_counts_failed_attempts_not_reconnects(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """With RELAYGATE_MAX_ATTEMPTS=2, hand-overs ended by the phone reconnecting use up nothing:
    the message fails only at its second failed attempt; attempts counts every hand-over."""
    running = await start_gateway(database_url, max_attempts=2)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        first = await pair_relay(api, "first")
        second = await pair_relay(api, "second")
        answer = await send(api)
        message_id = answer["request_id"]
        for hand_over in (1, 2):
            relay = await RawRelay.connect(running.relay_url, first["device_token"])
            assert (await relay.recv())["id"] == message_id
            await relay.close()
            body = await status_of(api, message_id)
            while len(body["history"]) < hand_over or body["history"][-1]["outcome"] != "relay_offline":
                body = await status_of(api, message_id)
        relay = await RawRelay.connect(running.relay_url, first["device_token"])
        assert (await relay.recv())["id"] == message_id
        await relay.send({"type": "ack", "id": message_id})
        relay2 = await RawRelay.connect(running.relay_url, second["device_token"])
        await report(relay, message_id, "failed", "radio_off")  # the first failure of two: retried
        holder, command = await first_receiver([relay, relay2])
        assert command["id"] == message_id
        await report(holder, message_id, "failed", "no_service")
        body = await wait_status(api, message_id, "failed")
        assert body["failure_reason"] == "no_service" and body["attempts"] == 4
        assert [h["outcome"] for h in body["history"]] == [
            "relay_offline",
            "relay_offline",
            "failed",
            "failed",
        ]
    finally:
        await running.stop()


async def test_failed_attempts_survive_a_restart(database_url: str, session: aiohttp.ClientSession) -> None:
    """Failures recorded before a restart count toward RELAYGATE_MAX_ATTEMPTS after it."""
    running = await start_gateway(database_url, max_attempts=2)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        paired = await pair_relay(api)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])
        message_id = (await send(api))["request_id"]
        assert (await relay.recv())["id"] == message_id
        await report(relay, message_id, "failed", "radio_off")
    finally:
        await running.stop()
    running = await start_gateway(database_url, max_attempts=2)
    api = ApiClient(session, running.base_url, token)
    try:
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])
        assert (await relay.recv())["id"] == message_id  # the exclusion is not kept; the count is
        await report(relay, message_id, "failed", "radio_off")
        body = await wait_status(api, message_id, "failed")
        assert body["failure_reason"] == "radio_off" and body["attempts"] == 2
    finally:
        await running.stop()


async def test_pings_and_pongs_do_not_count_as_heartbeats(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A relay that only exchanges WebSocket pings and pongs is still closed with 4002: the
    heartbeat timeout counts protocol frames."""
    running = await start_gateway(database_url, heartbeat_interval=0.4)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        paired = await pair_relay(api)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])

        async def keepalive_only() -> None:
            with contextlib.suppress(ConnectionClosed):
                for _ in range(100):  # bounded: 10 s at most
                    await relay.ws.pong()
                    await relay.ws.ping()
                    await asyncio.sleep(0.1)

        chatter = asyncio.create_task(keepalive_only(), name="test.keepalive_only")
        try:
            code, _ = await relay.closed(timeout=5)
        finally:
            chatter.cancel()
        assert code == 4002
    finally:
        await running.stop()


async def test_permessage_deflate_is_declined(api: ApiClient, gateway: RunningGateway) -> None:
    """A relay offering permessage-deflate gets no extension: frames are uncompressed."""
    paired = await pair_relay(api)
    async with connect(
        gateway.relay_url,
        additional_headers={"Authorization": f"Bearer {paired['device_token']}"},
        subprotocols=["relaygate.v1"],  # type: ignore[list-item]
    ) as ws:
        assert (
            ws.request is not None and "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        )
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send(json.dumps(HELLO))
        assert json.loads(await ws.recv())["type"] == "welcome"


async def test_failed_after_sent_is_final(api: ApiClient, gateway: RunningGateway) -> None:
    """A retryable reason reported after sent fails the message for good: no other relay gets it."""
    a = await pair_relay(api, "a")
    relay = await RawRelay.connect(gateway.relay_url, a["device_token"])
    answer = await send(api)
    assert (await relay.recv())["id"] == answer["request_id"]
    await report(relay, answer["request_id"], "sent")
    b = await pair_relay(api, "b")
    other = await RawRelay.connect(gateway.relay_url, b["device_token"])
    await report(relay, answer["request_id"], "failed", "radio_off")
    body = await status_of(api, answer["request_id"])
    assert body["status"] == "failed" and body["failure_reason"] == "radio_off" and body["attempts"] == 1
    with pytest.raises(TimeoutError):
        await other.recv(timeout=0.3)
