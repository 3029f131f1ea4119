"""WebSocket ping/pong from the gateway's one keepalive task: a socket that stops answering is
dropped within two ping intervals, long before the heartbeat timeout; one that answers stays."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.harness import ApiClient, FaultProxy, eventually, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

PING = 0.5


async def test_unanswered_pings_drop_the_socket_answered_ones_keep_it(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Behind a frozen (half-open) link a relay goes offline by the ping alone, within two
    intervals, while a relay whose client answers pings stays online all along."""
    proxy = FaultProxy()
    await proxy.start()
    running = await start_gateway(database_url, relay_ping_interval=PING, heartbeat_interval=60.0)
    proxy.target = ("127.0.0.1", running.gateway.relay_port)
    _, token = await make_account(database_url)
    hub = running.gateway.hub
    assert hub is not None
    try:
        api = ApiClient(session, running.base_url, token)
        live, frozen = await pair_relay(api, "live"), await pair_relay(api, "frozen")
        direct = await RawRelay.connect(running.relay_url, live["device_token"])
        proxied = await RawRelay.connect(f"ws://127.0.0.1:{proxy.port}/relay/v1", frozen["device_token"])
        assert hub.is_online(live["device_id"]) and hub.is_online(frozen["device_id"])
        await asyncio.sleep(3 * PING)  # pinged and answered a few times: both still online
        assert hub.is_online(live["device_id"]) and hub.is_online(frozen["device_id"])

        proxy.freeze()  # the heartbeat timeout is 150 s away: only the ping can notice

        async def frozen_offline() -> bool:
            return not hub.is_online(frozen["device_id"])

        await eventually(frozen_offline, timeout=2 * PING + 1.5, what="frozen relay offline")
        assert hub.is_online(live["device_id"])
        await direct.ws.close()
        proxied.kill()
    finally:
        await running.stop()
        await proxy.stop()
