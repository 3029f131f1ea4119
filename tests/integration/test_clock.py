"""The gateway's one clock (gateway/clock.py): the parts that read time read it from the clock the
runtime was given, so a test moves time with ``RunningGateway.clock.advance`` and patches nothing."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest

from tests.harness import ApiClient, MovableClock, make_account, start_gateway
from tests.webhook_receiver import Receiver

TO = "+998901234567"


async def test_token_rate_allowance_refills_on_the_gateway_clock(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Past the burst a token is refused; when the gateway's clock moves 20 s the allowance is
    full again, although hardly any real time passed."""
    running = await start_gateway(database_url, api_rate_per_second=0.1, api_rate_burst=2)
    _, token = await make_account(database_url)
    client = ApiClient(session, running.base_url, token)
    try:
        statuses = [(await client.get("/v1/account"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        running.clock.advance(20)
        assert [(await client.get("/v1/account"))[0] for _ in range(2)] == [200, 200]
    finally:
        await running.stop()


async def test_subscription_expiry_and_auth_cache_follow_the_gateway_clock(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A subscription valid today expires for the gateway when its clock moves three days on;
    the cached token lookup does not hide it."""
    clock = MovableClock()
    running = await start_gateway(database_url, clock=clock)
    _, token = await make_account(database_url, expires=date.today() + timedelta(days=1))
    client = ApiClient(session, running.base_url, token)
    try:
        status, body, _ = await client.post("/v1/sms/send", json={"to": TO, "message": "before"})
        assert status == 200, body
        clock.advance(3 * 86400)
        status, body, _ = await client.post("/v1/sms/send", json={"to": TO, "message": "after"})
        assert status == 402 and body["error"]["code"] == "subscription_expired", body
        assert (await client.get("/v1/account"))[0] == 200  # reading still works
    finally:
        await running.stop()


async def test_webhook_signature_timestamp_is_the_gateway_clock(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """The dispatcher stamps each attempt with the gateway's wall clock."""
    receiver = Receiver()
    await receiver.start()
    running = await start_gateway(database_url)
    _, token = await make_account(database_url)
    client = ApiClient(session, running.base_url, token)
    try:
        status, hook, _ = await client.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["webhook.test"]}
        )
        assert status == 201, hook
        running.clock.advance(120)
        status, body, _ = await client.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
        assert status in (200, 202), body
        (arrived,) = await receiver.wait_for("/hook", 1)
        stamp = int(arrived.headers["webhook-timestamp"])
        assert abs(stamp - (time.time() + 120)) < 10, stamp
    finally:
        await running.stop()
        await receiver.stop()


def test_movable_clock_moves_wall_and_monotonic_time_together_and_only_forward() -> None:
    """advance/jump_to shift time(), now() and monotonic() alike; moving back is refused."""
    clock = MovableClock()
    target = datetime.now(UTC) + timedelta(days=2)
    mono = clock.monotonic()
    clock.jump_to(target)
    assert abs((clock.now() - target).total_seconds()) < 1
    assert clock.monotonic() - mono >= 2 * 86400 - 1
    with pytest.raises(ValueError):
        clock.jump_to(target - timedelta(hours=1))
    with pytest.raises(ValueError):
        clock.advance(-1)
