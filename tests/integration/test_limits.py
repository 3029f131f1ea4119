"""Sending caps through the real server: per-account daily and monthly caps and the per-recipient
hourly cap answer ``rate_limited`` with ``Retry-After`` and the reason, count every send path,
hold under concurrent sends, survive a restart and are set by PATCH /v1/account and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import asyncpg

from tests.harness import ApiClient, RunningGateway, make_account, start_gateway
from tests.integration.test_cli import _env, _run

A = "+998901234567"
B = "+998901234568"


async def send(api: ApiClient, to: str = A, **extra: Any) -> tuple[int, Any, Mapping[str, str]]:
    """POST /v1/sms/send."""
    return await api.post(
        "/v1/sms/send", json={"to": to, "message": "hello", **extra.pop("body", {})}, **extra
    )


async def set_caps(api: ApiClient, **caps: int | str | None) -> dict[str, Any]:
    """PATCH /v1/account with ``caps`` (or other settings); the account object."""
    status, body, _ = await api.request("PATCH", "/v1/account", json=caps)
    assert status == 200, body
    return dict(body["account"])


def assert_refused(answer: tuple[int, Any, Mapping[str, str]], reason: str) -> int:
    """A 429 naming ``reason`` with Retry-After and the RateLimit headers; the seconds to wait."""
    status, body, headers = answer
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited" and body["error"]["details"]["reason"] == reason
    wait = int(headers["Retry-After"])
    assert wait == body["error"]["details"]["retry_after_seconds"] >= 1
    assert "RateLimit-Remaining" in headers and "RateLimit-Limit" in headers
    return wait


async def count_messages(database_url: str) -> int:
    """Rows in messages."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages"))
    finally:
        await conn.close()


async def test_daily_cap_counts_sms_and_otp_and_says_when(api: ApiClient) -> None:
    """With a daily cap of 3, an SMS and two OTPs use it up; the next send of either kind is
    refused with reason daily_send_limit and Retry-After until UTC midnight."""
    account = await set_caps(api, daily_send_limit=3)
    assert account["daily_send_limit"] == 3 and account["monthly_send_limit"] is None
    assert (await send(api))[0] == 200
    for purpose in ("login", "reset"):
        status, body, _ = await api.post("/v1/otp/send", json={"to": B, "purpose": purpose})
        assert status == 200, body
    wait = assert_refused(await send(api, B), "daily_send_limit")
    assert wait <= 86400
    assert_refused(await api.post("/v1/otp/send", json={"to": B, "purpose": "other"}), "daily_send_limit")
    await set_caps(api, daily_send_limit=None)
    assert (await send(api))[0] == 200


async def test_monthly_cap_and_validation(api: ApiClient, database_url: str) -> None:
    """A monthly cap refuses with reason monthly_send_limit; out-of-range caps are 422 and change
    nothing."""
    await set_caps(api, monthly_send_limit=2, daily_send_limit=100)
    assert (await send(api))[0] == 200
    assert (await send(api, B))[0] == 200
    wait = assert_refused(await send(api), "monthly_send_limit")
    assert wait <= 31 * 86400
    for bad in ({"monthly_send_limit": 0}, {"daily_send_limit": -1}, {"per_recipient_hour_limit": "5"}):
        status, body, _ = await api.request("PATCH", "/v1/account", json=bad)
        assert status == 422 and body["error"]["code"] == "validation_error", body
    _, body, _ = await api.get("/v1/account")
    assert body["account"]["monthly_send_limit"] == 2 and body["account"]["daily_send_limit"] == 100
    assert await count_messages(database_url) == 2


async def test_per_recipient_cap_default_and_override(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """The gateway default (here 3 an hour) applies until the account sets its own; the same
    number in national form is the same recipient; other numbers are not affected."""
    running = await start_gateway(database_url, recipient_hourly_limit=3)
    try:
        _, token = await make_account(database_url, "shop")
        api = ApiClient(session, running.base_url, token)
        account = await set_caps(api, default_region="UZ")
        assert account["per_recipient_hour_limit"] is None
        for to in (A, A, "90 123 45 67"):
            assert (await send(api, to))[0] == 200
        wait = assert_refused(await send(api, A), "per_recipient_hour_limit")
        assert 3500 <= wait <= 3600
        assert (await send(api, B))[0] == 200
        await set_caps(api, per_recipient_hour_limit=4)
        assert (await send(api, A))[0] == 200
        assert_refused(await send(api, A), "per_recipient_hour_limit")
    finally:
        await running.stop()


async def test_concurrent_sends_never_pass_the_cap(api: ApiClient, database_url: str) -> None:
    """Forty sends at once against a daily cap of 5 and a per-recipient cap of 7: exactly 5 are
    accepted and stored, the rest refused."""
    await set_caps(api, daily_send_limit=5, per_recipient_hour_limit=7)
    answers = await asyncio.gather(*(send(api) for _ in range(40)))
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200] * 5 + [429] * 35
    assert {a[1]["error"]["details"]["reason"] for a in answers if a[0] == 429} == {"daily_send_limit"}
    assert await count_messages(database_url) == 5


async def test_replays_and_refused_sends_use_nothing(api: ApiClient, database_url: str) -> None:
    """An idempotent replay and a refused send (a blank text) do not use the cap."""
    await set_caps(api, daily_send_limit=2)
    key = {"Idempotency-Key": "order-1"}
    first = await send(api, headers=key)
    again = await send(api, headers=key)
    assert first[0] == again[0] == 200 and first[1]["request_id"] == again[1]["request_id"]
    assert (await send(api, body={"message": " "}))[0] == 422
    assert (await send(api, B))[0] == 200
    assert_refused(await send(api), "daily_send_limit")
    assert await count_messages(database_url) == 2


async def test_counts_survive_a_restart(database_url: str, session: aiohttp.ClientSession) -> None:
    """What was sent before a restart counts after it: the counts come from the messages table."""
    _, token = await make_account(database_url, "shop")
    first = await start_gateway(database_url, recipient_hourly_limit=2)
    try:
        api = ApiClient(session, first.base_url, token)
        await set_caps(api, daily_send_limit=3)
        assert (await send(api))[0] == 200
        assert (await send(api))[0] == 200
    finally:
        await first.stop()
    second = await start_gateway(database_url, recipient_hourly_limit=2)
    try:
        api = ApiClient(session, second.base_url, token)
        assert_refused(await send(api), "per_recipient_hour_limit")
        assert (await send(api, B))[0] == 200
        assert_refused(await send(api, "+998901234569"), "daily_send_limit")
    finally:
        await second.stop()


async def test_cli_sets_and_shows_caps(
    gateway: RunningGateway, database_url: str, session: aiohttp.ClientSession
) -> None:
    """accounts update --daily-send-limit/--per-recipient-hour-limit set the caps (0 clears
    them), show prints them, and the running gateway enforces them within its 2 s cache; an out
    of range value exits 2."""
    account_id, token = await make_account(database_url, "shop")
    api = ApiClient(session, gateway.base_url, token)
    env = _env(DATABASE_URL=database_url)
    assert (await send(api))[0] == 200
    code, out, err = await _run(
        "accounts",
        "update",
        account_id,
        "--daily-send-limit",
        "1",
        "--per-recipient-hour-limit",
        "9",
        env=env,
    )
    assert code == 0, err
    assert "1/day" in out and "9/hour" in out
    async with asyncio.timeout(5):
        while (answer := await send(api, B))[0] == 200:
            await asyncio.sleep(0.1)
    assert_refused(answer, "daily_send_limit")
    code, out, _ = await _run("accounts", "update", account_id, "--daily-send-limit", "0", "--json", env=env)
    assert code == 0 and json.loads(out)["daily_send_limit"] is None
    assert json.loads(out)["per_recipient_hour_limit"] == 9
    code, _, err = await _run("accounts", "update", account_id, "--monthly-send-limit", "-3", env=env)
    assert code == 2 and "monthly-send-limit" in err
