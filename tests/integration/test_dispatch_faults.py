"""The dispatch loop through a database outage: decisions it cannot record are put back, the
task keeps running, and the message goes out once PostgreSQL is reachable again."""

from __future__ import annotations

import aiohttp
import pytest

from tests.harness import ApiClient, TcpProxy, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"


async def test_dispatch_survives_an_unreachable_database(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """With the database cut while a relay comes online for queued work, the dispatched
    transition cannot be stored: no send goes out, pipeline.dispatch stays up, and the send
    follows by itself once the database is back."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    running = await start_gateway(proxy.url)
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        paired = await pair_relay(api)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])  # cached from now on
        await relay.close()
        status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "later"})
        assert status == 200, answer
        await proxy.stop()
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])  # no query needed
        with pytest.raises(TimeoutError):
            await relay.recv(timeout=1.5)  # at least one failed attempt and one back-off
        supervisor = running.gateway.supervisor
        assert not supervisor.failed.is_set(), supervisor.failure
        assert "pipeline.dispatch" in supervisor.names
        await proxy.start()
        command = await relay.recv(timeout=10)
        assert command["type"] == "send" and command["id"] == answer["request_id"]
        _, body, _ = await api.get("/v1/messages/status", params={"request_id": answer["request_id"]})
        assert body["status"] == "dispatched" and body["attempts"] == 1
    finally:
        await running.stop()
        await proxy.stop()
