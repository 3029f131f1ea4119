"""A customer's webhook endpoint answering with bytes PostgreSQL cannot store (NUL) still gets
exactly one logged attempt per scheduled attempt: the excerpt is stored with the NUL replaced."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.harness import ApiClient, make_account, start_gateway
from tests.webhook_receiver import Receiver


async def test_a_nul_in_the_endpoint_answer_is_logged_once(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A 200 whose body holds U+0000 is one succeeded attempt with the NUL shown as U+FFFD, not
    a crash of the attempt and a hot loop of re-deliveries."""
    running = await start_gateway(database_url, webhook_schedule=(0.0, 0.3), webhook_timeout=2.0)
    receiver = Receiver()
    await receiver.start()
    receiver.script["/nul"] = lambda n: web.Response(body=b"ok\x00then", content_type="text/plain")
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        status, hook, _ = await api.post(
            "/v1/webhooks", json={"url": receiver.url("/nul"), "events": ["webhook.test"]}
        )
        assert status == 201, hook
        status, _, _ = await api.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
        assert status in (200, 202)
        await receiver.wait_for("/nul", 1)
        async with asyncio.timeout(10):
            while True:
                _, listing, _ = await api.get("/v1/webhooks/deliveries")
                if listing["deliveries"] and listing["deliveries"][0]["status"] != "pending":
                    break
                await asyncio.sleep(0.05)
        _, detail, _ = await api.get(f"/v1/webhooks/deliveries/{listing['deliveries'][0]['id']}")
        assert detail["delivery"]["status"] == "succeeded"
        assert [a["response_excerpt"] for a in detail["attempts_log"]] == ["ok\ufffdthen"]
        assert len(receiver.on("/nul")) == 1
        assert not running.gateway.supervisor.failed.is_set()
    finally:
        await receiver.stop()
        await running.stop()
