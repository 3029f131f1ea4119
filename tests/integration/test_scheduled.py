"""Scheduled send (``send_at``): held as ``scheduled`` until due, then queued and sent; strict
input; ``ttl_seconds`` from ``send_at``; only messages due within the horizon held in memory;
a scheduled message survives ``kill -9``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from gateway.sim.relay import RelayFleet, SimOptions
from tests.harness import (
    ApiClient,
    GatewayProcess,
    MovableClock,
    RunningGateway,
    eventually,
    make_account,
    parse_time,
    start_gateway,
)
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"


async def status_of(api: ApiClient, request_id: str) -> dict[str, Any]:
    """GET /v1/messages/status."""
    status, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
    assert status == 200, body
    return dict(body)


async def test_scheduled_message_waits_then_goes(database_url: str, session: aiohttp.ClientSession) -> None:
    """send_at an hour ahead: answered scheduled with not_before = send_at; nothing reaches the
    relay; when the clock gets there it is queued, dispatched and its expiry counts from send_at."""
    clock = MovableClock()
    running = await start_gateway(database_url, clock=clock)
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        paired = await pair_relay(api)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])
        send_at = (clock.now() + timedelta(hours=1)).replace(microsecond=0)
        status, answer, _ = await api.post(
            "/v1/sms/send",
            json={"to": TO, "message": "later", "send_at": send_at.isoformat(), "ttl_seconds": 600},
        )
        assert status == 200, answer
        assert answer["status"] == "scheduled" and answer["hold_reason"] == "send_at"
        assert parse_time(answer["not_before"]) == send_at
        view = await status_of(api, answer["request_id"])
        assert view["status"] == "scheduled" and parse_time(view["send_at"]) == send_at
        assert parse_time(view["expires_at"]) == send_at + timedelta(seconds=600)
        _, listed, _ = await api.get("/v1/messages", params={"status": "scheduled"})
        assert [m["request_id"] for m in listed["messages"]] == [answer["request_id"]]
        now_id = (await api.post("/v1/sms/send", json={"to": TO, "message": "now"}))[1]["request_id"]
        assert (await relay.recv())["id"] == now_id  # the scheduled one did not jump ahead
        clock.advance(3600)
        assert running.gateway.pipeline is not None
        running.gateway.pipeline.wake()
        frame = await relay.recv()
        assert frame["type"] == "send" and frame["id"] == answer["request_id"]
        view = await status_of(api, answer["request_id"])
        assert view["status"] == "dispatched" and view["not_before"] is None
        await relay.close()
    finally:
        await running.stop()


async def test_send_at_is_validated(api: ApiClient) -> None:
    """send_at in the past (beyond 60 s), more than 30 days ahead, or without an offset is a
    validation_error naming send_at; a few seconds in the past means now."""
    now = datetime.now(UTC)
    for value, reason in (
        ((now - timedelta(minutes=5)).isoformat(), "past"),
        ((now + timedelta(days=31)).isoformat(), "30 days"),
        ((now + timedelta(hours=1)).replace(tzinfo=None).isoformat(), ""),
        ("tomorrow", ""),
        ("0001-01-01T00:00:00+14:00", ""),
        ("9999-12-31T23:59:59-14:00", ""),
    ):
        status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "x", "send_at": value})
        assert status == 422, (value, body)
        assert "send_at" in body["error"]["details"]["fields"], body
        assert reason in body["error"]["details"]["fields"]["send_at"], body
    status, body, _ = await api.post(
        "/v1/sms/send", json={"to": TO, "message": "x", "send_at": (now - timedelta(seconds=5)).isoformat()}
    )
    assert status == 200 and body["status"] == "queued", body


async def test_far_future_messages_stay_in_the_database_until_the_horizon(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A message due beyond the look-ahead horizon (1 h) is not held in memory; it is read when
    the horizon reaches it and released at its time."""
    clock = MovableClock()
    running = await start_gateway(database_url, clock=clock)
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        pipeline = running.gateway.pipeline
        assert pipeline is not None
        near = (
            await api.post(
                "/v1/sms/send",
                json={
                    "to": TO,
                    "message": "near",
                    "send_at": (clock.now() + timedelta(minutes=20)).isoformat(),
                    "ttl_seconds": 7 * 86400,
                },
            )
        )[1]
        far = (
            await api.post(
                "/v1/sms/send",
                json={"to": TO, "message": "far", "send_at": (clock.now() + timedelta(days=3)).isoformat()},
            )
        )[1]
        assert near["request_id"] in pipeline.held and far["request_id"] not in pipeline.held
        clock.advance(3 * 86400 - 600)
        pipeline.wake()
        await eventually(lambda: _holds(running, far["request_id"]), what="far message loaded")
        # the near one was released on the way (no relay: it waits in the queue)
        assert (await status_of(api, near["request_id"]))["status"] == "queued"
        clock.advance(600)
        pipeline.wake()

        async def released() -> bool:
            return bool((await status_of(api, far["request_id"]))["status"] == "queued")

        await eventually(released, what="far message released")
    finally:
        await running.stop()


async def _holds(running: RunningGateway, request_id: str) -> bool:
    assert running.gateway.pipeline is not None
    return request_id in running.gateway.pipeline.held


async def test_scheduled_message_survives_kill_9(database_url: str, session: aiohttp.ClientSession) -> None:
    """kill -9 while a message is scheduled: it is still scheduled in the database, and after a
    restart it is sent when due (at once if that time passed meanwhile), not before, once."""
    gateway = GatewayProcess(database_url)
    await gateway.start()
    _, token = await make_account(database_url)
    api = ApiClient(session, gateway.base_url, token)
    send_at = datetime.now(UTC) + timedelta(seconds=10)
    status, answer, _ = await api.post(
        "/v1/sms/send", json={"to": TO, "message": "scheduled", "send_at": send_at.isoformat()}
    )
    assert status == 200 and answer["status"] == "scheduled", answer
    await gateway.kill()
    conn = await asyncpg.connect(database_url)
    try:  # committed before the answer: there after the kill, still waiting
        assert (
            await conn.fetchval("SELECT status FROM messages WHERE id = $1", answer["request_id"])
            == "scheduled"
        )
    finally:
        await conn.close()
    await gateway.start()
    fleet = await RelayFleet.start(
        SimOptions(
            api_url=gateway.base_url, token=token, devices=1, sent_delay=0.01, delivered_delay=0.01, seed=5
        )
    )
    try:

        async def delivered() -> dict[str, Any] | None:
            view = await status_of(api, answer["request_id"])
            return view if view["status"] == "delivered" else None

        view = await eventually(delivered, timeout=20, what="delivered after restart")
        assert parse_time(view["dispatched_at"]) >= send_at - timedelta(milliseconds=5)
        assert [r["id"] for r in fleet.sent] == [answer["request_id"]]
    finally:
        await fleet.stop()
        assert await gateway.stop() == 0
    conn = await asyncpg.connect(database_url)
    try:
        assert (
            await conn.fetchval("SELECT status FROM messages WHERE id = $1", answer["request_id"])
            == "delivered"
        )
    finally:
        await conn.close()
