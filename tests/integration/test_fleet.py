"""Fleet-scale behaviour with simulated relays over real sockets: 1,000 relays at once, 1,000
messages spread by load, a relay dying mid-run, the relay-sim CLI, and kill -9 of the gateway."""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from gateway.sim.relay import RelayFleet, SimOptions
from tests.harness import (
    PYTHON,
    ApiClient,
    GatewayProcess,
    eventually,
    fleet_options,
    make_account,
    start_gateway,
)

TO = "+998901234567"


async def _statuses(database_url: str) -> dict[str, tuple[str, str | None]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, status, failure_reason FROM messages")
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["failure_reason"]) for r in rows}


async def _wait_all_final(
    database_url: str, ids: set[str], timeout: float
) -> dict[str, tuple[str, str | None]]:
    async with asyncio.timeout(timeout):
        while True:
            statuses = await _statuses(database_url)
            if all(statuses.get(i, ("?", None))[0] in ("delivered", "failed") for i in ids):
                return statuses
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_thousand_relays_connect_at_once(database_url: str, session: aiohttp.ClientSession) -> None:
    """1,000 simulated relays pair and connect to one gateway and all show online."""
    running = await start_gateway(database_url, pair_rate_per_second=1e6, pair_burst=10**6, db_pool_size=10)
    _, token = await make_account(database_url)
    fleet = await RelayFleet.start(
        SimOptions(api_url=running.base_url, token=token, devices=1000, seed=1), timeout=60
    )
    try:
        assert running.gateway.hub is not None and running.gateway.hub.online_count == 1000
        api = ApiClient(session, running.base_url, token)
        online = 0
        cursor = ""
        while True:
            _, page, _ = await api.get(
                "/v1/devices", params={"limit": "200", **({"cursor": cursor} if cursor else {})}
            )
            online += sum(d["online"] for d in page["devices"])
            if not page["next_cursor"]:
                break
            cursor = page["next_cursor"]
        assert online == 1000
    finally:
        await fleet.stop()
        await running.stop()


@pytest.mark.slow
async def test_thousand_messages_over_five_relays(database_url: str, session: aiohttp.ClientSession) -> None:
    """1,000 messages over 5 relays are all delivered, spread by load; a relay killed mid-run
    gives back its unacknowledged work, and nothing is sent twice."""
    running = await start_gateway(database_url, pair_rate_per_second=1e6, pair_burst=10**6)
    _, token = await make_account(database_url)
    fleet = await RelayFleet.start(
        fleet_options(running, token, 5, sent_delay=0.02, delivered_delay=0.05, seed=2)
    )
    api = ApiClient(session, running.base_url, token)
    for relay in fleet.relays:  # Android's default of 30/min would make this test take minutes
        status, _, _ = await api.request(
            "PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000}
        )
        assert status == 200
    try:

        async def one(i: int) -> str:
            status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": f"message {i}"})
            assert status == 200, body
            return str(body["request_id"])

        first = await asyncio.gather(*(one(i) for i in range(500)))
        dropped = fleet.relays[0].device_id

        async def dropped_has_sent() -> bool | None:  # killed mid-run, not before it did anything
            return True if sum(s["device_id"] == dropped for s in fleet.sent) >= 20 else None

        await eventually(dropped_has_sent, timeout=30, what="the first relay sending")
        fleet.relays[0].drop()
        second = await asyncio.gather(*(one(i) for i in range(500, 1000)))
        ids = set(first) | set(second)
        statuses = await _wait_all_final(database_url, ids, timeout=120)
        assert {statuses[i][0] for i in ids} == {"delivered"}
        sent_ids = [s["id"] for s in fleet.sent]
        assert len(sent_ids) == len(set(sent_ids)) == 1000, "a message was sent twice or not at all"
        per_device = collections.Counter(s["device_id"] for s in fleet.sent)
        survivors = [n for device, n in per_device.items() if device != dropped]
        assert len(per_device) == 5 and min(survivors) >= 100, per_device  # spread by load
        accepts = running.gateway.pipeline.accepts if running.gateway.pipeline else None
        assert accepts is not None and accepts.items == 1000
        assert accepts.batches < 500, "concurrent sends did not share commits"
    finally:
        await fleet.stop()
        await running.stop()


async def test_relay_sim_cli_records_and_keeps_state(
    database_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """`relaygate relay-sim` pairs, records every SMS it "sends" and reconnects the same relays from --state-dir."""
    running = await start_gateway(database_url, pair_rate_per_second=1e6, pair_burst=10**6)
    _, token = await make_account(database_url)
    record = tmp_path / "sent.jsonl"
    args = [
        "-m",
        "gateway",
        "relay-sim",
        "--api-url",
        running.base_url,
        "--token",
        token,
        "--devices",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
        "--record",
        str(record),
        "--sent-delay",
        "0.01",
        "--delivered-delay",
        "0.01",
    ]
    api = ApiClient(session, running.base_url, token)

    async def run_once(messages: int) -> str:
        proc = await asyncio.create_subprocess_exec(
            PYTHON, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        out = []
        async with asyncio.timeout(30):
            while "relays connected" not in (line := (await proc.stdout.readline()).decode()):
                assert line, "relay-sim exited early"
                out.append(line)
        for i in range(messages):
            status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": f"cli {i}"})
            assert status == 200
            await _wait_all_final(database_url, {body["request_id"]}, timeout=10)
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0
        return "".join(out)

    try:
        first = await run_once(3)
        lines = [json.loads(x) for x in record.read_text().splitlines()]
        assert len(lines) == 3 and {x["to"] for x in lines} == {TO}
        assert {"device_id", "id", "to", "message", "at"} <= set(lines[0])
        _, devices, _ = await api.get("/v1/devices")
        assert len(devices["devices"]) == 2
        second = await run_once(1)
        assert "paired" in first and "paired" not in second
        _, devices, _ = await api.get("/v1/devices")
        assert len(devices["devices"]) == 2
        assert len(record.read_text().splitlines()) == 4
    finally:
        await running.stop()


async def test_kill_9_during_a_burst_loses_nothing(database_url: str, session: aiohttp.ClientSession) -> None:
    """kill -9 of the gateway during a send burst; after a restart every accepted message ends
    delivered (or failed with a reason), and no phone sends one twice."""
    gateway = GatewayProcess(database_url, RELAYGATE_HEARTBEAT_INTERVAL="2")
    await gateway.start()
    _, token = await make_account(database_url)
    fleet = await RelayFleet.start(
        SimOptions(
            api_url=gateway.base_url,
            token=token,
            devices=3,
            sent_delay=0.05,
            delivered_delay=0.1,
            backoff_base=0.1,
            backoff_max=1.0,
            seed=3,
        )
    )
    api = ApiClient(session, gateway.base_url, token)
    for relay in fleet.relays:
        await api.request("PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000})
    accepted: list[str] = []

    async def sender(i: int) -> None:
        try:
            status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": f"burst {i}"})
        except aiohttp.ClientError:
            return
        if status == 200:
            accepted.append(body["request_id"])

    try:
        burst = [asyncio.ensure_future(sender(i)) for i in range(400)]
        while len(accepted) < 100:
            await asyncio.sleep(0.005)
        await gateway.kill()
        await asyncio.gather(*burst)
        assert len(accepted) < 400, "the kill did not interrupt the burst"
        unfinished = [
            s for s, _ in (await _statuses(database_url)).values() if s in ("queued", "dispatched", "sent")
        ]
        assert unfinished, "nothing was in flight at the kill"
        await gateway.start()
        recovered = [json.loads(line) for line in gateway.output if "pipeline.recovered" in line]
        assert recovered and recovered[-1]["messages"] > 0
        statuses = await _wait_all_final(database_url, set(accepted), timeout=90)
        finals = [statuses[i] for i in accepted]
        assert all(s == "delivered" or (s == "failed" and reason) for s, reason in finals), finals
        assert sum(s == "delivered" for s, _ in finals) >= len(accepted) * 0.95
        sent_ids = [s["id"] for s in fleet.sent]
        assert len(sent_ids) == len(set(sent_ids)), "a message was sent twice"
        assert set(accepted) <= set(statuses)
    finally:
        await fleet.stop()
        await gateway.stop()
