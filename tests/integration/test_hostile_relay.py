"""Hostile relay frames through a real gateway and real sockets: a string PostgreSQL cannot
store is refused at the edge with an error frame, a value the database refuses fails only its
own report or telemetry row, and neither stops the gateway or another account's traffic."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.sim.relay import RelayFleet, SimOptions
from protocol import RelaySession, ReportReceived
from tests.harness import ApiClient, RunningGateway, make_account, start_gateway
from tests.relay_client import HEARTBEAT, HELLO, RawRelay, pair_relay

TO = "+998901234567"
AT = "2026-11-23T10:00:00Z"


@dataclass
class Scene:
    """A gateway with an attacker account (one raw relay) and a victim account (a simulated fleet)."""

    running: RunningGateway
    attacker: ApiClient
    victim: ApiClient
    fleet: RelayFleet


@pytest.fixture
async def scene(database_url: str, session: aiohttp.ClientSession) -> AsyncIterator[Scene]:
    """Start the gateway, both accounts and the victim's four simulated relays."""
    running = await start_gateway(
        database_url, pair_rate_per_second=1e6, pair_burst=10**6, telemetry_flush_interval=0.05
    )
    _, attacker_token = await make_account(database_url, "mallory")
    _, victim_token = await make_account(database_url, "victim")
    victim = ApiClient(session, running.base_url, victim_token)
    fleet = await RelayFleet.start(
        SimOptions(
            api_url=running.base_url,
            token=victim_token,
            devices=4,
            sent_delay=0.01,
            delivered_delay=0.02,
            seed=10,
            backoff_base=0.1,
            backoff_max=0.5,
        )
    )
    try:
        for relay in fleet.relays:
            status, _, _ = await victim.request(
                "PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000}
            )
            assert status == 200
        yield Scene(running, ApiClient(session, running.base_url, attacker_token), victim, fleet)
    finally:
        await fleet.stop()
        await running.stop()


async def _send_many(api: ApiClient, count: int, started: asyncio.Event, after: int) -> list[str]:
    """Send ``count`` messages, 50 at a time; set ``started`` once ``after`` were accepted."""
    gate = asyncio.Semaphore(50)
    accepted = 0

    async def one(i: int) -> str:
        nonlocal accepted
        async with gate:
            status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": f"notice {i}"})
        assert status == 200, body
        accepted += 1
        if accepted >= after:
            started.set()
        return str(body["request_id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _wait_delivered(database_url: str, ids: list[str], timeout: float) -> None:
    """Until every message in ``ids`` is final; then assert all were delivered."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                rows = await conn.fetch("SELECT status FROM messages WHERE id = ANY($1::text[])", ids)
                statuses = [r["status"] for r in rows]
                if len(rows) == len(ids) and all(s in ("delivered", "failed") for s in statuses):
                    break
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert set(statuses) == {"delivered"}


def _assert_alive(running: RunningGateway) -> None:
    supervisor = running.gateway.supervisor
    assert not supervisor.failed.is_set(), supervisor.failure
    for task in ("pipeline.dispatch", "messages.transitions", "relay.telemetry", "relay.events"):
        assert task in supervisor.names


async def _expect_error(relay: RawRelay, ref: str | None) -> dict[str, Any]:
    frame = await relay.recv()
    assert frame["type"] == "error" and frame["code"] == "invalid_field" and frame["ref"] == ref, frame
    return frame


async def test_nul_report_while_another_account_sends_a_thousand(scene: Scene, database_url: str) -> None:
    """The issue's NUL report (and NUL in every other relay field) mid-way through another
    account's 1,000 sends: error frames for the attacker, every victim message delivered once,
    the gateway and the attacker's session still up."""
    paired = await pair_relay(scene.attacker, "evil")
    evil = await RawRelay.connect(scene.running.relay_url, paired["device_token"])
    started = asyncio.Event()
    sending = asyncio.create_task(_send_many(scene.victim, 1000, started, after=300))
    await started.wait()
    nul_report = {"type": "report", "id": "req_x\u0000", "status": "failed", "reason": "x", "at": AT}
    await evil.send(nul_report)
    await _expect_error(evil, "req_x\x00")
    await evil.send({**nul_report, "id": "req_y", "reason": "radio\x00off"})
    await _expect_error(evil, "req_y")
    await evil.send({"type": "ack", "id": "req_\x00"})
    await _expect_error(evil, "req_\x00")
    await evil.send({**HEARTBEAT, "app_version": "1.0\x00"})
    await _expect_error(evil, None)
    await evil.send({**HEARTBEAT, "sims": [{"slot": 0, "carrier": "Evil\x00Tel", "ready": True}]})
    await _expect_error(evil, None)
    await evil.send({**HEARTBEAT, "queue_length": 2**40})  # would overflow its integer column
    await _expect_error(evil, None)
    await evil.send({**HELLO, "model": "\x00"})  # a second hello is out of order anyway
    assert (await evil.recv())["type"] == "error"
    ids = await sending
    await _wait_delivered(database_url, ids, timeout=120)
    sent = [s["id"] for s in scene.fleet.sent]
    assert len(sent) == len(set(sent)) == 1000 and set(sent) == set(ids)
    _assert_alive(scene.running)
    await evil.send({"type": "report", "id": "req_unknown", "status": "sent", "at": AT})
    assert await evil.recv() == {"type": "report_ack", "id": "req_unknown", "status": "sent"}


async def test_report_the_database_refuses_fails_alone(scene: Scene, database_url: str) -> None:
    """A report that passes the edge but that the database refuses (here a CHECK) gets an error
    frame and no report_ack, while another account's sends share its batches: they are all
    delivered, and the refused message can still be reported later."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE messages ADD CONSTRAINT test_poison CHECK (failure_reason <> 'poisoned_reason')"
        )
    finally:
        await conn.close()
    paired = await pair_relay(scene.attacker, "evil")
    evil = await RawRelay.connect(scene.running.relay_url, paired["device_token"])
    status, answer, _ = await scene.attacker.post("/v1/sms/send", json={"to": TO, "message": "hi"})
    assert status == 200, answer
    command = await evil.recv()
    await evil.send({"type": "ack", "id": command["id"]})
    started = asyncio.Event()
    sending = asyncio.create_task(_send_many(scene.victim, 300, started, after=100))
    await started.wait()
    poisoned = {
        "type": "report",
        "id": command["id"],
        "status": "failed",
        "reason": "poisoned_reason",
        "at": AT,
    }
    for _ in range(3):  # the relay retries it; each time refused alone
        await evil.send(poisoned)
        error = await _expect_error(evil, command["id"])
        assert "could not be stored" in error["message"]
    ids = await sending
    await _wait_delivered(database_url, ids, timeout=60)
    _assert_alive(scene.running)
    _, body, _ = await scene.attacker.get("/v1/messages/status", params={"request_id": command["id"]})
    assert body["status"] == "dispatched" and body["failure_reason"] is None
    pipeline = scene.running.gateway.pipeline
    assert pipeline is not None  # still tracked: it times out like any unreported message
    assert pipeline.scheduler.location(command["id"]) == ("acked", paired["device_id"])
    await evil.send({"type": "report", "id": command["id"], "status": "sent", "at": AT})
    assert await evil.recv() == {"type": "report_ack", "id": command["id"], "status": "sent"}
    _, body, _ = await scene.attacker.get("/v1/messages/status", params={"request_id": command["id"]})
    assert body["status"] == "sent"
    assert pipeline.scheduler.location(command["id"]) is None


async def _battery(database_url: str, device_id: str, wanted: int, timeout: float = 5.0) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(timeout):
            while await conn.fetchval("SELECT battery FROM devices WHERE id = $1", device_id) != wanted:
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def test_bad_telemetry_does_not_stop_the_flush_of_others(scene: Scene, database_url: str) -> None:
    """NUL in hello/heartbeat telemetry is refused at the edge; telemetry the database refuses
    (a CHECK) is left out of the flush alone; other devices' telemetry is still written."""
    first = await pair_relay(scene.attacker, "evil")
    second = await pair_relay(scene.attacker, "honest")
    bad_hello = await RawRelay.connect(scene.running.relay_url, first["device_token"], hello=False)
    await bad_hello.send({**HELLO, "os_version": "14\x00"})
    await _expect_error(bad_hello, None)
    assert (await bad_hello.closed())[0] == 1008
    evil = await RawRelay.connect(scene.running.relay_url, first["device_token"])
    honest = await RawRelay.connect(scene.running.relay_url, second["device_token"])
    await evil.send({**HEARTBEAT, "battery": 10, "app_version": "\x00"})
    await _expect_error(evil, None)
    await honest.send({**HEARTBEAT, "battery": 41})
    await _battery(database_url, second["device_id"], 41)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER TABLE devices ADD CONSTRAINT test_poison CHECK (app_version <> 'poison-1')")
    finally:
        await conn.close()
    await evil.send({**HEARTBEAT, "battery": 11, "app_version": "poison-1"})
    await honest.send({**HEARTBEAT, "battery": 42})
    await _battery(database_url, second["device_id"], 42)
    await honest.send({**HEARTBEAT, "battery": 43})
    await _battery(database_url, second["device_id"], 43)
    _assert_alive(scene.running)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT battery FROM devices WHERE id = $1", first["device_id"]) != 11
    finally:
        await conn.close()


def _random_frame(rnd: random.Random) -> str:
    """One hostile frame: near-valid frames with odd ids, reasons and numbers, wrong types,
    non-objects and broken JSON."""
    texts = ["req_x", "req_\x00", "\x01\x02", "😀" * 16, "a" * 64, "a" * 65, "", " ", "\n", "req_\u202e"]
    text = rnd.choice(texts)
    kind = rnd.randrange(8)
    if kind == 0:
        status = rnd.choice(["sent", "delivered", "failed", "unknown", 3])
        frame: dict[str, Any] = {
            "type": "report",
            "id": text,
            "status": status,
            "at": rnd.choice([AT, "x", 5]),
        }
        if rnd.random() < 0.7:
            frame["reason"] = rnd.choice([text, "radio_off", None])
        return json.dumps(frame)
    if kind == 1:
        return json.dumps({"type": "ack", "id": rnd.choice([text, 7, None])})
    if kind == 2:
        return json.dumps(
            {
                **HEARTBEAT,
                "battery": rnd.choice([0, 100, 101, -1, 2**63, 1.5, "50"]),
                "queue_length": rnd.choice([0, 2**31, -5]),
                "app_version": rnd.choice([text, None]),
                "sims": [{"slot": rnd.choice([0, 3, 4]), "carrier": text, "ready": True}],
            }
        )
    if kind == 3:
        return json.dumps({**HELLO, "model": text})
    if kind == 4:
        return json.dumps(rnd.choice([[], "report", 5, None, {"type": 5}, {"type": "send", "id": "x"}]))
    if kind == 5:
        return rnd.choice(["{", '{"type": "report", "id": "\\ud800"}', "\x00", "[" * 3000])
    if kind == 6:
        return json.dumps({"type": "report", "id": f"req_{rnd.randrange(10**6)}", "status": "sent", "at": AT})
    return json.dumps({"type": "heartbeat", "network": "wifi", "sims": [], "queue_length": 0})


async def test_random_frames_through_a_real_socket(scene: Scene) -> None:
    """300 random hostile frames over real sockets get exactly the answers the sans-I/O session
    model predicts (error frames, report_acks, closes with its code), and the gateway stays up."""
    paired = await pair_relay(scene.attacker, "fuzzer")
    rnd = random.Random(20261201)

    async def connect() -> tuple[RawRelay, RelaySession]:
        relay = await RawRelay.connect(scene.running.relay_url, paired["device_token"])
        model = RelaySession(device_id=paired["device_id"], now=time.time())
        model.receive_frame(json.dumps(HELLO), time.time())
        model.data_to_send(), model.events_received()
        return relay, model

    relay, model = await connect()
    closes = 0
    for _ in range(300):
        data = _random_frame(rnd)
        model.receive_frame(data, time.time())
        expected = [json.loads(f) for f in model.data_to_send()]
        for event in model.events_received():
            if isinstance(event, ReportReceived):
                expected.append({"type": "report_ack", "id": event.frame.id, "status": event.frame.status})
        await relay.send(data)
        for wanted in expected:
            got = await relay.recv()
            assert (got["type"], got.get("code"), got.get("id")) == (
                wanted["type"],
                wanted.get("code"),
                wanted.get("id"),
            ), (data, got, wanted)
        if model.close_code is not None:
            assert (await relay.closed())[0] == int(model.close_code), data
            closes += 1
            relay, model = await connect()
    assert closes > 0  # the error limit was reached at least once
    await relay.send({"type": "report", "id": "req_last", "status": "sent", "at": AT})
    assert await relay.recv() == {"type": "report_ack", "id": "req_last", "status": "sent"}
    _assert_alive(scene.running)
