"""Queue control and queue health through the real server: pause and resume (durable, nothing
dispatched while paused), the queue_full and stale_queue policies answering queue_blocked,
GET /v1/queue's numbers after real traffic, the readiness queue check, and the queue.manage
scope granted on upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.sim.relay import RelayFleet
from store.database import apply_schema
from tests.harness import (
    ApiClient,
    DatabaseFactory,
    RunningGateway,
    eventually,
    fleet_options,
    make_account,
    start_gateway,
)
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"
FIXTURES = Path(__file__).parent.parent / "fixtures"


async def send(api: ApiClient, **body: Any) -> tuple[int, Any, Mapping[str, str]]:
    """POST /v1/sms/send to ``TO``."""
    return await api.post("/v1/sms/send", json={"to": TO, "message": "hello", **body})


async def queue(api: ApiClient) -> dict[str, Any]:
    """GET /v1/queue's ``queue``."""
    status, body, _ = await api.get("/v1/queue")
    assert status == 200 and body["ok"] is True, body
    return dict(body["queue"])


def assert_blocked(answer: tuple[int, Any, Mapping[str, str]], reason: str) -> Mapping[str, str]:
    """A 503 queue_blocked naming ``reason``; its headers."""
    status, body, headers = answer
    assert status == 503, body
    assert body["error"]["code"] == "queue_blocked" and body["error"]["details"]["reason"] == reason
    return headers


async def readiness_queue(api: ApiClient) -> dict[str, str]:
    """The readiness report's queue check."""
    _, report, _ = await api.get("/v1/launch/readiness")
    return next(c for c in report["checks"] if c["id"] == "queue")


async def test_paused_queue_dispatches_nothing_until_resumed(
    api: ApiClient, gateway: RunningGateway, database_url: str, session: aiohttp.ClientSession
) -> None:
    """Messages queued before a pause stay queued while their relay is online (another account's
    traffic still flows), sends answer queue_blocked paused without Retry-After, readiness
    fails; resume dispatches them."""
    first, second = (await send(api))[1]["request_id"], (await send(api))[1]["request_id"]
    status, body, _ = await api.post("/v1/queue/pause")
    assert status == 200 and body["queue"]["paused"] is True and body["queue"]["blocked_reason"] == "paused"
    relay = await RawRelay.connect(gateway.relay_url, (await pair_relay(api))["device_token"])
    _, other_token = await make_account(database_url, "other")
    other = ApiClient(session, gateway.base_url, other_token)
    other_relay = await RawRelay.connect(gateway.relay_url, (await pair_relay(other))["device_token"])
    try:
        headers = assert_blocked(await send(api), "paused")
        assert "Retry-After" not in headers
        assert_blocked(await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}), "paused")
        assert (await readiness_queue(api))["status"] == "fail"
        # The other account's message goes out; ours, queued as long, do not.
        assert (await send(other))[0] == 200
        assert (await other_relay.recv())["type"] == "send"
        with pytest.raises(TimeoutError):
            await relay.recv(timeout=0.3)
        state = await queue(api)
        assert state["depth"]["normal"] == 2 and state["relays_online"] == 1 and state["eta_seconds"] is None
        status, body, _ = await api.post("/v1/queue/resume")
        assert status == 200 and body["queue"]["paused"] is False and body["queue"]["blocked_reason"] is None
        sent = {(await relay.recv())["id"], (await relay.recv())["id"]}
        assert sent == {first, second}
        assert (await send(api))[0] == 200
        assert (await readiness_queue(api))["status"] == "pass"
    finally:
        await relay.close()
        await other_relay.close()


async def test_pause_survives_a_restart_and_needs_its_scope(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A paused queue is still paused after a restart; pausing needs queue.manage (a token
    with every scope has it), reading the queue account.read."""
    _, token = await make_account(database_url, "shop")
    _, reader = await make_account(database_url, "reader", scopes=["account.read"])
    running = await start_gateway(database_url)
    try:
        api = ApiClient(session, running.base_url, token)
        assert (await send(api))[0] == 200
        assert (await api.post("/v1/queue/pause"))[0] == 200
        assert (await api.post("/v1/queue/pause"))[0] == 200  # idempotent
        status, body, _ = await api.with_token(reader).post("/v1/queue/pause")
        assert status == 403 and body["error"]["details"]["required_scope"] == "queue.manage"
    finally:
        await running.stop()
    running = await start_gateway(database_url)
    try:
        api = ApiClient(session, running.base_url, token)
        state = await queue(api)
        assert state["paused"] is True and state["depth"]["normal"] == 1
        assert_blocked(await send(api), "paused")
        assert (await api.post("/v1/queue/resume"))[0] == 200
        assert (await send(api))[0] == 200
        _, page, _ = await api.with_token(reader).get("/v1/queue")
        assert page["queue"]["paused"] is False
    finally:
        await running.stop()


async def test_full_queue_is_blocked_with_retry_after(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """At RELAYGATE_MAX_QUEUE waiting messages sends answer queue_blocked queue_full with a
    Retry-After (60 s without relays); GET /v1/queue and readiness say so."""
    running = await start_gateway(database_url, max_queue_per_account=2)
    try:
        _, token = await make_account(database_url, "shop")
        api = ApiClient(session, running.base_url, token)
        assert (await send(api))[0] == (await send(api))[0] == 200
        headers = assert_blocked(await send(api), "queue_full")
        assert headers["Retry-After"] == "60"
        state = await queue(api)
        assert state["blocked_reason"] == "queue_full" and state["paused"] is False
        check = await readiness_queue(api)
        assert check["status"] == "fail" and "queue_full" in check["message"]
    finally:
        await running.stop()


async def test_stale_queue_is_blocked(database_url: str, session: aiohttp.ClientSession) -> None:
    """Once the oldest waiting message waited longer than RELAYGATE_MAX_QUEUE_AGE, sends answer
    queue_blocked stale_queue with Retry-After 60."""
    running = await start_gateway(database_url, max_queue_age=0.5)
    try:
        _, token = await make_account(database_url, "shop")
        api = ApiClient(session, running.base_url, token)
        assert (await send(api))[0] == 200

        async def stale() -> dict[str, Any] | None:
            state = await queue(api)
            return state if state["blocked_reason"] == "stale_queue" else None

        state = await eventually(stale, what="the queue stale")
        assert state["oldest_queued_age_seconds"] > 0.5
        headers = assert_blocked(await send(api), "stale_queue")
        assert headers["Retry-After"] == "60"
    finally:
        await running.stop()


async def test_queue_health_after_traffic(database_url: str, session: aiohttp.ClientSession) -> None:
    """Depth by priority (and one scheduled message) while no relay is online, then relays,
    capacity, ETA and the last minute's accepted/sent/delivered once two simulated relays have
    delivered everything due."""
    running = await start_gateway(database_url)
    _, token = await make_account(database_url, "shop")
    api = ApiClient(session, running.base_url, token)
    try:
        empty = await queue(api)
        assert empty["depth"] == {"otp": 0, "high": 0, "normal": 0, "low": 0, "scheduled": 0}
        assert empty["oldest_queued_age_seconds"] is None and empty["eta_seconds"] == 0
        for priority in ("high", "normal", "normal", "low"):
            assert (await send(api, priority=priority))[0] == 200
        assert (await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}))[0] == 200
        later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body, _ = await send(api, send_at=later)
        assert status == 200 and body["status"] == "scheduled", body
        state = await queue(api)
        assert state["depth"] == {"otp": 1, "high": 1, "normal": 2, "low": 1, "scheduled": 1}
        assert state["oldest_queued_age_seconds"] >= 0 and state["relays_online"] == 0
        assert state["eta_seconds"] is None and state["capacity_per_minute"] == 0
        assert state["last_minute"]["accepted"] == 6
        fleet = await RelayFleet.start(fleet_options(running, token, 2))
        try:

            async def drained() -> dict[str, Any] | None:
                state = await queue(api)
                # the reports are committed before the messages leave memory: wait for both
                return state if state["last_minute"]["delivered"] == 5 and state["in_flight"] == 0 else None

            state = await eventually(drained, timeout=20, what="all five delivered")
            assert state["relays_online"] == 2 and state["capacity_per_minute"] == 60
            assert state["last_minute"] == {"accepted": 6, "sent": 5, "delivered": 5, "failed": 0}
            assert sum(state["depth"].values()) == 1 and state["in_flight"] == 0
            assert state["eta_seconds"] == 0
        finally:
            await fleet.stop()
    finally:
        await running.stop()


async def test_upgrade_grants_queue_manage_to_device_managers(databases: DatabaseFactory) -> None:
    """Upgrading a v6 database gives queue.manage to the tokens that held devices.manage, once:
    a token made later with devices.manage alone keeps exactly what it was given."""
    conn = await asyncpg.connect(await databases.create(empty=True))
    try:
        await apply_schema(conn, (FIXTURES / "schema_v6.sql").read_text())
        await conn.execute("INSERT INTO accounts (id, name) VALUES ('acc_a', 'a')")
        for token_id, given in (("tok_ops", ["devices.manage"]), ("tok_read", ["account.read"])):
            await conn.execute(
                "INSERT INTO access_tokens (id, account_id, token_hash, hint, scopes)"
                " VALUES ($1, 'acc_a', $2, 'rgat_x…', $3)",
                token_id,
                token_id.encode(),
                given,
            )
        await apply_schema(conn)
        await conn.execute(
            "INSERT INTO access_tokens (id, account_id, token_hash, hint, scopes)"
            " VALUES ('tok_new', 'acc_a', '\\x01', 'rgat_y…', '{devices.manage}')"
        )
        await apply_schema(conn)
        scopes = {
            r["id"]: list(r["scopes"]) for r in await conn.fetch("SELECT id, scopes FROM access_tokens")
        }
        assert scopes == {
            "tok_ops": ["devices.manage", "queue.manage"],
            "tok_read": ["account.read"],
            "tok_new": ["devices.manage"],
        }
    finally:
        await conn.close()


async def test_concurrent_pause_and_sends_agree(api: ApiClient, database_url: str) -> None:
    """Sends racing a pause are each either stored (200) or refused (503): none is lost and no
    refused one is stored."""
    answers = await asyncio.gather(
        *(send(api) for _ in range(20)), api.post("/v1/queue/pause"), *(send(api) for _ in range(20))
    )
    sends = [a for i, a in enumerate(answers) if i != 20]
    accepted = {a[1]["request_id"] for a in sends if a[0] == 200}
    assert all(a[0] in (200, 503) for a in sends)
    conn = await asyncpg.connect(database_url)
    try:
        stored = {r["id"] for r in await conn.fetch("SELECT id FROM messages")}
    finally:
        await conn.close()
    assert stored == accepted
