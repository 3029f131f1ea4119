"""Hand-over of unacknowledged work after a relay drops, when the drop follows a clean close and
an immediate reconnect of the same phone (issue 11 item 1), repeated so that the race between the
old session's offline handling and the new session shows up if it is there."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.harness import ApiClient, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"
AT = "2026-11-23T10:00:00Z"
GRACE = 0.2
ROUNDS = 50


async def test_work_of_a_dropped_relay_goes_to_another_after_the_grace_every_time(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """50 times: relay A closes cleanly while an unpinned send is being dispatched, reconnects
    at once, receives the send and drops before acking; relay B (online) gets it after the
    reclaim grace, exactly once, and A keeps no in-flight slot for it."""
    running = await start_gateway(database_url, reclaim_grace=GRACE)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    pipeline = running.gateway.pipeline
    assert pipeline is not None
    try:
        first = await pair_relay(api, "A")
        second = await pair_relay(api, "B")
        for device in (first, second):  # Android's default of 30 SMS a minute would stop the loop
            status, _, _ = await api.request(
                "PATCH", f"/v1/devices/{device['device_id']}", json={"per_minute_limit": 1000}
            )
            assert status == 200
        b = await RawRelay.connect(running.relay_url, second["device_token"])
        for round_ in range(ROUNDS):
            # B is online but disabled until A holds the message, so the send is A's.
            await api.request("PATCH", f"/v1/devices/{second['device_id']}", json={"enabled": False})
            a = await RawRelay.connect(running.relay_url, first["device_token"])
            posting = asyncio.create_task(
                api.post("/v1/sms/send", json={"to": TO, "message": f"round {round_}"})
            )
            # Not a wait for an event: it shifts A's close against the dispatch of the send by
            # 0-18 ms from round to round, so every interleaving of the two is tried.
            await asyncio.sleep((round_ % 10) * 0.002)
            await a.close()
            a = await RawRelay.connect(running.relay_url, first["device_token"])
            status, answer, _ = await posting
            assert status == 200, answer
            command = await a.recv()
            assert command["type"] == "send" and command["id"] == answer["request_id"], (round_, command)
            await api.request("PATCH", f"/v1/devices/{second['device_id']}", json={"enabled": True})
            a.kill()
            handed = await b.recv(timeout=GRACE + 5)
            assert handed["type"] == "send" and handed["id"] == command["id"], (round_, handed)
            await b.send({"type": "ack", "id": handed["id"]})
            await b.send({"type": "report", "id": handed["id"], "status": "sent", "at": AT})
            assert await b.recv() == {"type": "report_ack", "id": handed["id"], "status": "sent"}
            assert pipeline.device_load(first["device_id"]) == 0, round_
            _, body, _ = await api.get("/v1/messages/status", params={"request_id": command["id"]})
            assert body["status"] == "sent" and body["device_id"] == second["device_id"], (round_, body)
        assert not running.gateway.supervisor.failed.is_set(), running.gateway.supervisor.failure
    finally:
        await running.stop()
