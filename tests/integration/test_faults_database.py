"""PostgreSQL going away under load: a private PostgreSQL 15 cluster stopped with
``pg_ctl stop -m immediate`` while sends and relay reports flow, and the embedded server's
postmaster killed with SIGKILL. The API answers ``unavailable`` fast, relay sockets stay open,
unstored reports are not acknowledged, and the gateway resumes by itself."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from websockets.exceptions import InvalidStatus

from gateway.sim.relay import RelayFleet, SimOptions
from tests.harness import (
    ApiClient,
    GatewayProcess,
    PostgresCluster,
    SendLoad,
    make_account,
    server_tmpdir,
    start_gateway,
    with_database,
)
from tests.relay_client import RawRelay, pair_relay
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.skipif(
    not PostgresCluster.available(), reason="PostgreSQL 15 server binaries missing"
)


async def _statuses(url: str, ids: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, status FROM messages WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    return {r["id"]: r["status"] for r in rows}


async def _until(predicate: object, timeout: float, step: float = 0.05) -> float:
    """Seconds until ``predicate()`` (sync or async) is true; TimeoutError after ``timeout``."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()  # type: ignore[operator]
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return time.monotonic() - started
            await asyncio.sleep(step)


@pytest.mark.slow
async def test_postgres_stopped_under_load(session: aiohttp.ClientSession) -> None:
    """PostgreSQL stopped (-m immediate) under load: 503 + Retry-After within 2 s, relay sockets
    stay open, unstored reports are not acked, service resumes within 5 s of the restart, and
    every accepted message is delivered exactly once (webhooks resume too)."""
    with server_tmpdir("rg-pg15-") as root:
        await _stopped_under_load(PostgresCluster(root), session)


async def _stopped_under_load(cluster: PostgresCluster, session: aiohttp.ClientSession) -> None:
    await asyncio.to_thread(cluster.init)
    await cluster.start()
    try:
        admin = await asyncpg.connect(cluster.url)
        await admin.execute("CREATE DATABASE relaygate")
        await admin.close()
        url = with_database(cluster.url, "relaygate")
        running = await start_gateway(url, heartbeat_interval=1.0, db_pool_size=4)
        receiver = Receiver()
        await receiver.start()
        fleet: RelayFleet | None = None
        load: SendLoad | None = None
        try:
            _, token = await make_account(url)
            api = ApiClient(session, running.base_url, token)
            status, _, _ = await api.post(
                "/v1/webhooks", json={"url": receiver.url(), "events": ["message.delivered"]}
            )
            assert status == 201
            fleet = await RelayFleet.start(
                SimOptions(
                    api_url=running.base_url,
                    token=token,
                    devices=2,
                    sent_delay=0.05,
                    delivered_delay=1.0,  # reports fall into the outage
                    seed=11,
                    backoff_base=0.2,
                    backoff_max=1.0,
                )
            )
            for relay in fleet.relays:  # the default 30/min per phone would throttle this test
                status, _, _ = await api.request(
                    "PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000}
                )
                assert status == 200
            newcomer = await pair_relay(api, "Relay not seen yet")  # its token is not cached
            assert running.gateway.relay_listener is not None
            desk = running.gateway.relay_listener.reports
            load = SendLoad(api, rate=20.0, timeout=10.0)
            load.start()
            await _until(lambda: len(load.accepted) >= 20 and fleet.sent, 10)

            await cluster.stop("immediate")
            down_at = time.monotonic()
            # Reports of messages already on the phones arrive now: parked, not acknowledged.
            await _until(lambda: desk.parked > 0, 5)
            unacked = {key for relay in fleet.relays for key in relay.outbox}
            assert unacked, "a report should wait in a relay's outbox"
            status, health, headers = await api.get("/v1/health")
            assert status == 503 and health["database"] == "down" and headers.get("Retry-After")
            with pytest.raises(InvalidStatus) as refused:  # a token it cannot check: retry, not 401
                await RawRelay.connect(running.relay_url, newcomer["device_token"])
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers.get("Retry-After")
            await asyncio.sleep(2.5)
            assert all(key in {k for r in fleet.relays for k in r.outbox} for key in unacked)
            assert all(key not in set(r.acked_reports) for r in fleet.relays for key in unacked)

            await cluster.start()
            up_at = time.monotonic()
            resumed = await _until(
                lambda: any(o.status == 200 and o.started > up_at for o in load.outcomes), 10
            )
            await _until(lambda: desk.parked == 0, 10)
            await load.stop()

            during = [o for o in load.outcomes if down_at + 0.2 < o.started < up_at - 0.2]
            assert during, "requests should have been made during the outage"
            assert all(o.status == 503 and o.code == "unavailable" for o in during), collections.Counter(
                (o.status, o.code) for o in during
            )
            assert all(o.retry_after for o in during)
            assert max(o.seconds for o in during) < 2.0, max(o.seconds for o in during)
            assert resumed < 5.0, f"resumed {resumed:.2f}s after PostgreSQL was back"

            accepted = load.accepted
            try:  # reports parked or kept by the phones, then stored
                await _until(lambda: _all_delivered(url, accepted), 20, step=0.2)
            except TimeoutError:
                statuses = await _statuses(url, accepted)
                raise AssertionError(collections.Counter(statuses.values())) from None
            sent_ids = [record["id"] for record in fleet.sent]
            duplicates = [i for i, n in collections.Counter(sent_ids).items() if n > 1]
            assert not duplicates, duplicates
            assert set(accepted) <= set(sent_ids)
            assert all(relay.connections == 1 for relay in fleet.relays), "relay sockets must stay open"
            # the webhook dispatcher listens again and delivers every message.delivered
            await receiver.wait_for("/hook", len(accepted), timeout=20)
            assert running.gateway.webhooks is not None and running.gateway.webhooks._listener is not None
            assert not running.gateway.webhooks._listener.is_closed()
            assert running.gateway.supervisor.failure is None
        finally:
            if load is not None:
                await load.stop()
            if fleet is not None:
                await fleet.stop()
            await receiver.stop()
            await running.stop()
    finally:
        await asyncio.to_thread(cluster.destroy)


async def _all_delivered(url: str, ids: list[str]) -> bool:
    statuses = await _statuses(url, ids)
    return len(statuses) == len(ids) and all(s == "delivered" for s in statuses.values())


@pytest.mark.slow
async def test_embedded_postgres_killed_is_restarted(session: aiohttp.ClientSession) -> None:
    """SIGKILL of the embedded postmaster: the API answers 503 meanwhile, the gateway restarts
    the server by itself, the relay socket stays open, and queued work is then delivered."""
    with server_tmpdir("rg-embedded-") as data_dir:
        await _embedded_killed(data_dir, session)


async def _embedded_killed(data_dir: Path, session: aiohttp.ClientSession) -> None:
    gateway = GatewayProcess(None, RELAYGATE_DATA_DIR=str(data_dir))
    await gateway.start()
    try:
        token = next(m.group(0) for line in gateway.output if (m := re.search(r"rgat_\S+", line)))
        api = ApiClient(session, gateway.base_url, token)
        paired = await pair_relay(api)
        relay = await RawRelay.connect(
            f"ws://127.0.0.1:{gateway.relay_port}/relay/v1", paired["device_token"]
        )
        pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        unavailable = None
        async with asyncio.timeout(5):  # its backends notice the postmaster's death within moments
            while unavailable is None:
                started = time.monotonic()
                status, body, headers = await api.post(
                    "/v1/sms/send", json={"to": "+998901234567", "message": "x"}
                )
                assert time.monotonic() - started < 2.0
                if status == 503:
                    unavailable = body, headers
                else:
                    await asyncio.sleep(0.05)
        assert unavailable[0]["error"]["code"] == "unavailable" and unavailable[1].get("Retry-After")

        async def accepted() -> str | None:
            status, body, _ = await api.post("/v1/sms/send", json={"to": "+998901234567", "message": "back"})
            return body["request_id"] if status == 200 else None

        request_id = None
        async with asyncio.timeout(20):
            while request_id is None:
                request_id = await accepted()
                if request_id is None:
                    await asyncio.sleep(0.2)
        # the same socket gets the work: it stayed open through the restart
        frame = await relay.recv(timeout=10)
        while frame["type"] != "send":
            frame = await relay.recv(timeout=10)
        assert frame["id"] == request_id
        async with asyncio.timeout(10):  # its log line may still be on its way through the pipe
            while not any("database.embedded_restarted" in line for line in gateway.output):
                await asyncio.sleep(0.05)
        assert gateway.proc is not None and gateway.proc.returncode is None
        await relay.close()
    finally:
        print("".join(line for line in gateway.output if not line.startswith(" ")))
        await gateway.stop()
