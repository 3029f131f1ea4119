"""List sends across crashes: ``kill -9`` in the middle of queueing a big list leaves all of it
or none of it, and a ``kill -9`` in the middle of draining loses no item, sends none twice and
completes the batch exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.sim.relay import RelayFleet, SimOptions
from tests.harness import ApiClient, GatewayProcess, eventually, make_account


async def seed_list(database_url: str, account_id: str, size: int) -> str:
    """A list of ``size`` new recipients, written straight to the database (setup only)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO recipients (id, account_id, name, phone, name_key, metadata)
            SELECT 'rcp_' || lpad(i::text, 26, '0'), $1, 'Customer ' || i, '+99890' || lpad(i::text, 7, '0'),
                   'customer ' || i, jsonb_build_object('city', 'city' || (i % 7))
            FROM generate_series(1, $2) AS i
            """,
            account_id,
            size,
        )
        list_id = "lst_" + "0" * 25 + "1"
        await conn.execute(
            "INSERT INTO recipient_lists (id, account_id, name) VALUES ($1, $2, 'big')", list_id, account_id
        )
        await conn.execute(
            "INSERT INTO recipient_list_members (list_id, recipient_id) "
            "SELECT $1, id FROM recipients WHERE account_id = $2",
            list_id,
            account_id,
        )
    finally:
        await conn.close()
    return list_id


async def scalar(database_url: str, sql: str, *args: Any) -> Any:
    """One value from the database."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_kill_9_while_queueing_leaves_all_or_nothing(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """The gateway dies with a 30,000-number list written but not committed (its transaction
    held at the last step, the Idempotency-Key's insert, by a lock the test holds): after the
    restart there is no batch and no item; queued again, the list is there whole."""
    size = 30_000
    gateway = GatewayProcess(database_url)
    await gateway.start()
    account_id, token = await make_account(database_url, region="UZ")
    list_id = await seed_list(database_url, account_id, size)
    api = ApiClient(session, gateway.base_url, token)
    body = {"list_id": list_id, "message": "Hi {name} in {city}"}
    blocker = await asyncpg.connect(database_url)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE")
        call = asyncio.ensure_future(
            api.post("/v1/recipient-lists/queue", json=body, headers={"Idempotency-Key": "big-list"})
        )

        async def waiting_at_the_end() -> bool:
            assert not call.done(), call.result()
            return bool(  # (another connection: the blocker's transaction sees a frozen snapshot)
                await scalar(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%INSERT INTO idempotency_keys%'",
                )
            )

        await eventually(waiting_at_the_end, timeout=60, what="the queue transaction at its last step")
        await gateway.kill()
        answer = await asyncio.gather(call, return_exceptions=True)
        assert isinstance(answer[0], aiohttp.ClientError), answer  # never answered
        await blocking.rollback()

        async def backend_gone() -> bool:
            return bool(
                await blocker.fetchval(
                    "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '%INSERT INTO idempotency_keys%'"
                    " AND pid <> pg_backend_pid()"
                )
            )

        await eventually(backend_gone, timeout=30, what="the dead gateway's transaction ended")
        assert await blocker.fetchval("SELECT count(*) FROM messages") == 0
        assert await blocker.fetchval("SELECT count(*) FROM batches") == 0
        assert await blocker.fetchval("SELECT count(*) FROM idempotency_keys") == 0

        await gateway.start()
        status, queued, _ = await api.post(
            "/v1/recipient-lists/queue", json=body, headers={"Idempotency-Key": "big-list"}
        )
        assert status == 200 and queued["queued"] == size, queued
        count = await blocker.fetchval(
            "SELECT count(*) FROM messages WHERE batch_id = $1", queued["batch_id"]
        )
        assert count == size
    finally:
        await blocker.close()
        await gateway.stop()


@pytest.mark.slow
async def test_kill_9_while_draining_loses_nothing_and_sends_nothing_twice(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """kill -9 while simulated relays drain a 1,500-number list: after the restart every item
    ends delivered (or failed with a reason), no phone sends one twice, and batch.completed
    is written exactly once."""
    size = 1_500
    gateway = GatewayProcess(database_url, RELAYGATE_HEARTBEAT_INTERVAL="2")
    await gateway.start()
    account_id, token = await make_account(database_url, region="UZ")
    list_id = await seed_list(database_url, account_id, size)
    api = ApiClient(session, gateway.base_url, token)
    fleet = await RelayFleet.start(
        SimOptions(
            api_url=gateway.base_url,
            token=token,
            devices=8,
            sent_delay=0.02,
            delivered_delay=0.05,
            backoff_base=0.1,
            backoff_max=1.0,
            seed=5,
        )
    )
    try:
        for relay in fleet.relays:
            await api.request(
                "PATCH",
                f"/v1/devices/{relay.device_id}",
                json={"per_minute_limit": 1000, "max_in_flight": 50},
            )
        status, queued, _ = await api.post(
            "/v1/recipient-lists/queue", json={"list_id": list_id, "message": "Hi {name}"}
        )
        assert status == 200 and queued["queued"] == size, queued
        batch_id = queued["batch_id"]

        async def some_done() -> bool:
            done = await scalar(
                database_url,
                "SELECT count(*) FROM messages WHERE batch_id = $1 AND status IN ('sent', 'delivered')",
                batch_id,
            )
            return bool(done >= 300)

        try:
            await eventually(some_done, timeout=60, what="300 items sent")
        except TimeoutError:
            conn = await asyncpg.connect(database_url)
            try:
                statuses = await conn.fetch("SELECT status, count(*) FROM messages GROUP BY status")
            finally:
                await conn.close()
            raise AssertionError(f"{statuses}\n" + "".join(gateway.output[-40:])) from None
        await gateway.kill()
        left = await scalar(
            database_url,
            "SELECT count(*) FROM messages WHERE batch_id = $1 AND status IN ('queued', 'dispatched')",
            batch_id,
        )
        assert left > 0, "the list had drained before the kill"
        await gateway.start()

        async def completed() -> Any:
            return await scalar(database_url, "SELECT completed_at FROM batches WHERE id = $1", batch_id)

        await eventually(completed, timeout=120, what="the batch completed after the restart")
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT id, status, failure_reason FROM messages WHERE batch_id = $1", batch_id
            )
            events = await conn.fetch("SELECT data FROM events WHERE type = 'batch.completed'")
        finally:
            await conn.close()
        assert len(rows) == size
        assert all(
            r["status"] in ("sent", "delivered") or (r["status"] == "failed" and r["failure_reason"])
            for r in rows
        )
        assert sum(r["status"] in ("sent", "delivered") for r in rows) >= size * 0.95
        sent_ids = [s["id"] for s in fleet.sent]
        assert len(sent_ids) == len(set(sent_ids)), "an item was sent twice"
        assert {r["id"] for r in rows if r["status"] in ("sent", "delivered")} <= set(sent_ids)
        assert [json.loads(e["data"])["batch_id"] for e in events] == [batch_id]
    finally:
        await fleet.stop()
        await gateway.stop()
