"""Relay link faults through a TCP fault proxy between simulated relays and the relay port:
added latency, resets mid-frame, half-open sockets (no FIN, no RST) and relays flapping every
few seconds. Every message ends delivered exactly once, and device.online/offline events are
debounced instead of storming."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.sim.relay import RelayFleet, SimOptions
from tests.harness import ApiClient, FaultProxy, SendLoad, flap, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

DEBOUNCE = 3.0
RECONNECT_TIMEOUT = 25.0
"""Bound on a relay's return after a fault (a simulated relay gives up on a lost welcome after 10 s)."""


async def _device_events(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT type, data FROM events WHERE type IN ('device.online', 'device.offline') ORDER BY id"
        )
    finally:
        await conn.close()
    return [(r["type"], json.loads(r["data"])["device_id"]) for r in rows]


async def _undelivered(url: str, ids: list[str]) -> collections.Counter[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT status FROM messages WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    counts = collections.Counter(r["status"] for r in rows)
    counts["missing"] = len(ids) - len(rows)
    counts.pop("delivered", None)
    return +counts


async def _until(check: Any, timeout: float, step: float = 0.1) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(step)


@pytest.mark.slow
async def test_link_faults_deliver_exactly_once_without_event_storm(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Latency, mid-frame resets, a half-open link and ~15 s of flapping: every accepted message
    is delivered and sent by a phone exactly once; no device event while relays come back
    within the debounce, then one offline and one online for a relay that stays away."""
    proxy = FaultProxy()
    await proxy.start()
    running = await start_gateway(
        database_url,
        heartbeat_interval=1.0,
        reclaim_grace=2.0,
        device_event_debounce=DEBOUNCE,
        relay_public_url=f"ws://127.0.0.1:{proxy.port}/relay/v1",
    )
    proxy.target = ("127.0.0.1", running.gateway.relay_port)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    fleet = await RelayFleet.start(
        SimOptions(
            api_url=running.base_url,
            token=token,
            devices=2,
            sent_delay=0.05,
            delivered_delay=0.15,
            seed=7,
            backoff_base=0.2,
            backoff_max=0.5,
        )
    )
    load = SendLoad(api, rate=10.0)
    try:
        for relay in fleet.relays:
            status, _, _ = await api.request(
                "PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000}
            )
            assert status == 200
        load.start()

        proxy.latency = 0.15  # every chunk, both ways
        await asyncio.sleep(2.0)
        proxy.latency = 0.0

        for _ in range(3):  # a frame cut in half, then RST
            wanted = proxy.connections + 1
            proxy.reset_mid_frame()
            await _until(lambda: _reconnected(proxy, wanted, fleet), RECONNECT_TIMEOUT)  # noqa: B023

        before = proxy.connections
        proxy.freeze()  # half-open: no FIN, no RST; the gateway's heartbeat timeout must notice
        hub = running.gateway.hub
        assert hub is not None
        async with asyncio.timeout(10):  # 2.5 heartbeats without a frame, then a 3 s close at most
            while any(hub.is_online(r.device_id) for r in fleet.relays):
                await asyncio.sleep(0.05)
        proxy.reset_all()  # the phones' own TCP notices its dead sockets too, later
        proxy.thaw()
        await _until(lambda: _reconnected(proxy, before + 2, fleet), RECONNECT_TIMEOUT)

        resets = await flap(proxy, every=2.0, duration=15.0, rng=random.Random(3))
        assert resets >= 5
        await fleet.wait_connected(10)
        await load.stop()
        accepted = load.accepted
        assert len(accepted) > 150, collections.Counter(o.status for o in load.outcomes)
        assert all(o.status == 200 for o in load.outcomes)

        async def all_delivered() -> bool:
            return not await _undelivered(database_url, accepted)

        try:
            await _until(all_delivered, 20, step=0.2)
        except TimeoutError:
            raise AssertionError(await _undelivered(database_url, accepted)) from None
        sent = collections.Counter(record["id"] for record in fleet.sent)
        assert not [i for i, n in sent.items() if n > 1], "an SMS went out twice"
        assert set(accepted) <= set(sent)
        assert proxy.connections >= 2 + 2 * resets  # the faults did reach the sockets

        # relays always came back within the debounce: no offline, no second online
        await asyncio.sleep(DEBOUNCE + 0.5)
        events = await _device_events(database_url)
        assert collections.Counter(t for t, _ in events) == {"device.online": 2}, events

        # one relay stays away longer than the debounce: exactly one offline, then one online
        away = fleet.relays[0]
        away.pause_reconnect()
        gone_at = time.monotonic()
        away.drop()
        await _until(lambda: _has_events(database_url, "device.offline", 1), DEBOUNCE + 5)
        assert time.monotonic() - gone_at >= DEBOUNCE - 0.1
        away.resume_reconnect()
        await _until(lambda: _has_events(database_url, "device.online", 3), 10)
        events = await _device_events(database_url)
        assert events[-2:] == [("device.offline", away.device_id), ("device.online", away.device_id)], events
        assert collections.Counter(t for t, _ in events) == {"device.online": 3, "device.offline": 1}
    finally:
        await load.stop()
        await fleet.stop()
        await running.stop()
        await proxy.stop()


async def _reconnected(proxy: FaultProxy, connections: int, fleet: RelayFleet) -> bool:
    return proxy.connections >= connections and all(r.connected.is_set() for r in fleet.relays)


async def _has_events(url: str, event_type: str, count: int) -> bool:
    return sum(t == event_type for t, _ in await _device_events(url)) >= count


async def test_shutdown_writes_offline_events_the_debounce_holds(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A relay gone less than the debounce when the gateway stops still gets its device.offline."""
    running = await start_gateway(database_url, device_event_debounce=60.0)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    paired = await pair_relay(api)
    relay = await RawRelay.connect(running.relay_url, paired["device_token"])
    await _until(lambda: _has_events(database_url, "device.online", 1), 5)  # group-committed
    relay.kill()
    assert running.gateway.hub is not None
    hub = running.gateway.hub
    async with asyncio.timeout(5):
        while hub.is_online(paired["device_id"]):
            await asyncio.sleep(0.02)
    assert [t for t, _ in await _device_events(database_url)] == ["device.online"]
    await running.stop()
    assert await _device_events(database_url) == [
        ("device.online", paired["device_id"]),
        ("device.offline", paired["device_id"]),
    ]
