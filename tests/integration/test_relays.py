"""Relay fleet through real sockets: pairing, credentials, sessions, liveness, bad frames, isolation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest
from websockets.exceptions import InvalidStatus

from gateway.fleet.pairing import qr_payload
from tests.harness import ApiClient, RunningGateway, make_account, start_gateway
from tests.relay_client import HEARTBEAT, HELLO, RawRelay, pair_relay


async def _events(database_url: str, event_type: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE type = $1 ORDER BY id", event_type)
    finally:
        await conn.close()
    return [json.loads(r["data"]) for r in rows]


async def _wait_events(database_url: str, event_type: str, count: int) -> list[dict[str, Any]]:
    """Device events are group-committed in the background: wait until ``count`` are stored."""
    async with asyncio.timeout(5):
        while len(events := await _events(database_url, event_type)) < count:
            await asyncio.sleep(0.02)
    return events


async def _device(api: ApiClient, device_id: str) -> dict[str, Any]:
    status, body, _ = await api.get("/v1/devices")
    assert status == 200
    return next(d for d in body["devices"] if d["id"] == device_id)


async def _wait_until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_pairing_with_code_and_with_qr_payload(api: ApiClient, gateway: RunningGateway) -> None:
    """Both a typed code and a scanned QR payload pair a device; the code is single use."""
    status, created, _ = await api.post("/v1/devices/pairing-codes", json={"expires_in_seconds": 300})
    assert status == 201 and len(created["code"]) == 9 and created["code"][4] == "-"
    assert created["qr_payload"] == qr_payload(created["code"], gateway.base_url)
    anon = api.with_token(None)
    phone = {"name": "Shop phone", "model": "Pixel 8", "app_version": "1.0.0"}
    typed = created["code"].lower().replace("-", " ")
    status, paired, _ = await anon.post("/v1/relay/app/pair", json={"code": typed, **phone})
    assert (
        status == 200 and paired["device_token"].startswith("rgd_") and paired["ws_url"] == gateway.relay_url
    )
    assert paired["heartbeat_interval_seconds"] == 30
    status, again, _ = await anon.post("/v1/relay/app/pair", json={"code": created["code"], **phone})
    assert status == 404 and again["error"]["code"] == "not_found"

    _, created2, _ = await api.post("/v1/devices/pairing-codes")
    status, paired2, _ = await anon.post(
        "/v1/relay/app/pair", json={"qr_payload": created2["qr_payload"], **phone}
    )
    assert status == 200
    _, listing, _ = await api.get("/v1/devices")
    assert {d["id"] for d in listing["devices"]} == {paired["device_id"], paired2["device_id"]}
    assert all(d["online"] is False and d["name"] == "Shop phone" for d in listing["devices"])


async def test_pairing_code_expiry_and_attempt_limit(api: ApiClient, database_url: str) -> None:
    """An expired code fails; five wrong guesses at a code's secret half kill it for good."""
    anon = api.with_token(None)
    phone = {"name": "p", "model": "m", "app_version": "1"}
    _, expired, _ = await api.post("/v1/devices/pairing-codes")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE pairing_codes SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    status, _, _ = await anon.post("/v1/relay/app/pair", json={"code": expired["code"], **phone})
    assert status == 404

    _, live, _ = await api.post("/v1/devices/pairing-codes")
    lookup, secret = live["code"].split("-")
    wrong = [s for s in ("2222", "3333", "4444", "5555", "6666", "7777") if s != secret][:5]
    for guess in wrong:
        status, _body, _ = await anon.post("/v1/relay/app/pair", json={"code": f"{lookup}-{guess}", **phone})
        assert status == 404
    status, _, _ = await anon.post("/v1/relay/app/pair", json={"code": live["code"], **phone})
    assert status == 404
    _, listing, _ = await api.get("/v1/devices")
    assert listing["devices"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "p", "model": "m", "app_version": "1"}, "code"),
        ({"code": "ABCD-EFGH", "qr_payload": "x", "name": "p", "model": "m", "app_version": "1"}, "code"),
        ({"code": "0O1I-LLLL", "name": "p", "model": "m", "app_version": "1"}, "code"),
        (
            {"qr_payload": "https://evil.example/pair", "name": "p", "model": "m", "app_version": "1"},
            "qr_payload",
        ),
        ({"code": "ABCD-EFGH", "name": "", "model": "m", "app_version": "1"}, "name"),
        ({"code": 12345678, "name": "p", "model": "m", "app_version": "1"}, "code"),
        ({"code": "ABCD-EFGH", "name": "p" * 65, "model": "m", "app_version": "1"}, "name"),
        ({"code": "ABCD-EFGH", "model": "m", "app_version": "1", "admin": True}, "admin"),
    ],
)
async def test_pairing_bad_input(api: ApiClient, payload: dict[str, Any], field: str) -> None:
    """Malformed pairing requests are validation errors naming the field; nothing is paired."""
    status, body, _ = await api.with_token(None).post("/v1/relay/app/pair", json=payload)
    assert status == 422 and field in body["error"]["details"]["fields"], body
    _, listing, _ = await api.get("/v1/devices")
    assert listing["devices"] == []


async def test_pairing_is_rate_limited_per_address(database_url: str, session: aiohttp.ClientSession) -> None:
    """Pairing is unauthenticated, so an address gets a small burst and then 429 with Retry-After."""
    running = await start_gateway(database_url, pair_rate_per_second=0.1, pair_burst=3)
    try:
        anon = ApiClient(session, running.base_url)
        body = {"code": "ABCD-EFGH", "name": "p", "model": "m", "app_version": "1"}
        statuses = [(await anon.post("/v1/relay/app/pair", json=body))[0] for _ in range(3)]
        status, _err, headers = await anon.post("/v1/relay/app/pair", json=body)
        assert statuses == [404, 404, 404] and status == 429 and int(headers["Retry-After"]) >= 1
    finally:
        await running.stop()


async def test_credentials_are_separate(api: ApiClient, gateway: RunningGateway) -> None:
    """A device token never calls the customer API and an access token never opens a relay socket."""
    paired = await pair_relay(api)
    status, _body, _ = await api.with_token(paired["device_token"]).get("/v1/account")
    assert status == 401
    for token in [api.token or "", "rgd_garbage", paired["device_token"][:-1] + "x"]:
        with pytest.raises(InvalidStatus) as info:
            await RawRelay.connect(gateway.relay_url, token)
        assert info.value.response.status_code == 401


async def test_relay_online_with_telemetry_then_offline_when_killed(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """hello → online; heartbeat telemetry shows in the API; a dropped socket → offline + device.offline."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    await relay.send(HEARTBEAT)

    async def shows_telemetry() -> bool:
        d = await _device(api, paired["device_id"])
        return bool(d["online"] and d["battery"] == 64)

    await _wait_until(shows_telemetry)
    device = await _device(api, paired["device_id"])
    assert device["charging"] is True and device["signal"] == 3 and device["network"] == "wifi"
    assert (
        device["sims"]
        == [{"slot": 0, "carrier": "TestTel", "ready": True, "per_day": None, "sent_last_day": 0}]
        and device["last_seen_at"]
    )
    assert (await _wait_events(database_url, "device.online", 1))[0]["device_id"] == paired["device_id"]

    relay.kill()

    async def offline() -> bool:
        return not (await _device(api, paired["device_id"]))["online"]

    await _wait_until(offline, timeout=3)
    offline_events = await _wait_events(database_url, "device.offline", 1)
    assert gateway.gateway.hub is not None
    await gateway.gateway.hub.flush_telemetry()  # the gone relay's last telemetry is written
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchrow(
            "SELECT battery, last_seen_at FROM devices WHERE id = $1", paired["device_id"]
        )
    finally:
        await conn.close()
    assert stored is not None and stored["battery"] == 64 and stored["last_seen_at"] is not None
    assert [e["device_id"] for e in offline_events] == [paired["device_id"]]


async def test_silent_relay_times_out(database_url: str, session: aiohttp.ClientSession) -> None:
    """A relay that stops sending frames is closed with 4002 after 2.5 heartbeat intervals."""
    running = await start_gateway(database_url, heartbeat_interval=0.4)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        paired = await pair_relay(api)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])
        code, _ = await relay.closed(timeout=5)
        assert code == 4002
        assert not (await _device(api, paired["device_id"]))["online"]
        assert len(await _wait_events(database_url, "device.offline", 1)) == 1
    finally:
        await running.stop()


async def test_second_connection_replaces_the_first(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """A new socket of the same device closes the old one with 4000 and the device stays online."""
    paired = await pair_relay(api)
    first = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    second = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    code, _ = await first.closed()
    assert code == 4000
    await second.send(HEARTBEAT)
    await asyncio.sleep(0.1)
    assert (await _device(api, paired["device_id"]))["online"] is True
    assert len(await _wait_events(database_url, "device.online", 1)) == 1
    assert await _events(database_url, "device.offline") == []
    await second.close()


async def test_bad_frames_get_errors_and_others_keep_working(api: ApiClient, gateway: RunningGateway) -> None:
    """Malformed, unknown, incomplete and unexpected frames get error frames; the session and
    the other relays keep working; oversized frames, frames before hello and floods close."""
    a, b = await pair_relay(api, "A"), await pair_relay(api, "B")
    healthy = await RawRelay.connect(gateway.relay_url, b["device_token"])
    relay = await RawRelay.connect(gateway.relay_url, a["device_token"])
    cases: list[tuple[Any, str]] = [
        ("{not json", "malformed_frame"),
        ("[1, 2]", "malformed_frame"),
        (b"\x00binary", "malformed_frame"),
        ({"type": "teleport"}, "unknown_type"),
        ({"type": "heartbeat"}, "invalid_field"),
        ({**HEARTBEAT, "battery": 101}, "invalid_field"),
        (
            {"type": "report", "id": "req_x", "status": "failed", "at": "2026-01-01T00:00:00Z"},
            "invalid_field",
        ),
        (HELLO, "out_of_order"),
        ({"type": "ack", "id": "req_never_sent"}, "unknown_id"),
    ]
    for frame, expected in cases:
        await relay.send(frame)
        reply = await relay.recv()
        assert reply["type"] == "error" and reply["code"] == expected, (frame, reply)
    await relay.send(HEARTBEAT)
    await healthy.send(HEARTBEAT)
    assert (await _device(api, a["device_id"]))["online"] is True

    await relay.send(json.dumps({**HEARTBEAT, "pad": "x" * 70_000}))
    code, _ = await relay.closed()
    assert code == 1009

    early = await RawRelay.connect(gateway.relay_url, a["device_token"], hello=False)
    await early.send(HEARTBEAT)
    assert (await early.recv())["code"] == "out_of_order"
    assert (await early.closed())[0] == 1008

    flooder = await RawRelay.connect(gateway.relay_url, a["device_token"])
    for _ in range(400):
        try:
            await flooder.send(HEARTBEAT)
        except Exception:
            break
    assert (await flooder.closed())[0] == 4008

    await healthy.send(HEARTBEAT)
    assert (await _device(api, b["device_id"]))["online"] is True
    await healthy.close()


async def test_devices_are_isolated_between_accounts(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """Another account can neither see, change nor unpair a device."""
    paired = await pair_relay(api)
    _, other_token = await make_account(database_url, "other")
    other = api.with_token(other_token)
    _, listing, _ = await other.get("/v1/devices")
    assert listing["devices"] == []
    status, _, _ = await other.request("PATCH", f"/v1/devices/{paired['device_id']}", json={"name": "mine"})
    assert status == 404
    status, _, _ = await other.request("DELETE", f"/v1/devices/{paired['device_id']}")
    assert status == 404
    assert (await _device(api, paired["device_id"]))["name"] == "Relay Device 1"


async def test_patch_and_unpair(api: ApiClient, gateway: RunningGateway) -> None:
    """PATCH renames, disables and sets limits (null resets); DELETE closes the socket with 4001
    and the token stops working."""
    paired = await pair_relay(api)
    path = f"/v1/devices/{paired['device_id']}"
    status, body, _ = await api.request(
        "PATCH", path, json={"name": "Till 2", "enabled": False, "per_minute_limit": 12, "max_in_flight": 4}
    )
    assert status == 200 and body["device"]["name"] == "Till 2" and body["device"]["enabled"] is False
    assert body["device"]["limits"] == {
        "max_in_flight": 4,
        "per_minute": 12,
        "per_day": None,
        "defaults": ["per_day"],
        "sim_per_day": {},
    }
    status, body, _ = await api.request("PATCH", path, json={"per_minute_limit": None})
    assert body["device"]["limits"] == {
        "max_in_flight": 4,
        "per_minute": 30,
        "per_day": None,
        "defaults": ["per_minute", "per_day"],
        "sim_per_day": {},
    }
    for bad in [{"enabled": "yes"}, {"per_minute_limit": 0}, {"name": ""}, {"color": "red"}]:
        status, body, _ = await api.request("PATCH", path, json=bad)
        assert status == 422, bad
    assert (await _device(api, paired["device_id"]))["name"] == "Till 2"
    status, _, _ = await api.request(
        "PATCH", "/v1/devices/dev_01ARZ3NDEKTSV4RRFFQ69G5FAV", json={"name": "x"}
    )
    assert status == 404

    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    status, body, _ = await api.request("DELETE", path)
    assert status == 200 and body["unpaired"] is True
    assert (await relay.closed())[0] == 4001
    with pytest.raises(InvalidStatus):
        await RawRelay.connect(gateway.relay_url, paired["device_token"])
    _, listing, _ = await api.get("/v1/devices")
    assert listing["devices"] == []
    status, _, _ = await api.request("DELETE", path)
    assert status == 404


async def test_scopes_on_device_routes(api: ApiClient, database_url: str) -> None:
    """Listing needs account.read; pairing codes, PATCH and DELETE need devices.manage."""
    _, reader = await make_account(database_url, "r", scopes=["account.read"])
    client = api.with_token(reader)
    assert (await client.get("/v1/devices"))[0] == 200
    assert (await client.post("/v1/devices/pairing-codes"))[0] == 403
