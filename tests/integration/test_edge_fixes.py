"""Small edge bugs a new user met, and the per-account ceilings that keep tables bounded:
405 Allow, the accepted-messages counter, times with Z, scope errors, query wording, trusted
proxies, pending pairing codes, webhook endpoints, tokens and Idempotency-Key budgets."""

from __future__ import annotations

import re
from datetime import date

import aiohttp
import pytest

from gateway import limits
from gateway.api import devices as devices_api
from tests.harness import ApiClient, RunningGateway, make_account, start_gateway


async def test_405_allow_lists_every_method_of_the_path(api: ApiClient, gateway: RunningGateway) -> None:
    """``Allow`` names the methods of every route on the path, not only the first route's."""
    status, body, headers = await api.request("PUT", "/v1/webhooks/whk_01M8SR7DXAY08QJ77MHNTW5J0B")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in headers["Allow"].split(",")} == {"GET", "HEAD", "PATCH", "DELETE"}
    assert set(body["error"]["details"]["allowed_methods"]) == {"GET", "HEAD", "PATCH", "DELETE"}
    status, _, headers = await api.request("DELETE", "/v1/tokens")
    assert status == 405 and {m.strip() for m in headers["Allow"].split(",")} == {"GET", "HEAD", "POST"}


async def test_accepted_counter_counts_every_send_path(
    api: ApiClient, gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    """``relaygate_messages_accepted_total`` counts plain, keyed and OTP sends alike."""
    assert (await api.post("/v1/sms/send", json={"to": "+998901234567", "message": "a"}))[0] == 200
    keyed = await api.post(
        "/v1/sms/send", json={"to": "+998901234567", "message": "b"}, headers={"Idempotency-Key": "k1"}
    )
    assert keyed[0] == 200
    assert (await api.post("/v1/otp/send", json={"to": "+998901234567", "purpose": "login"}))[0] == 200
    async with session.get(f"http://127.0.0.1:{gateway.gateway.http_port}/metrics") as resp:
        text = await resp.text()
    match = re.search(r"^relaygate_messages_accepted_total (\d+)$", text, re.M)
    assert match is not None and int(match.group(1)) == 3, text


async def test_subscription_expired_details_use_z(api: ApiClient, database_url: str) -> None:
    """``details.expired_at`` of subscription_expired is RFC 3339 UTC with Z, like every time."""
    _, token = await make_account(database_url, "old", expires=date(2020, 1, 31))
    status, body, _ = await api.with_token(token).post(
        "/v1/sms/send", json={"to": "+998901234567", "message": "x"}
    )
    assert status == 402 and body["error"]["details"]["expired_at"] == "2020-01-31T23:59:59.999Z", body


async def test_unknown_scope_names_no_regex(api: ApiClient) -> None:
    """An unknown scope is refused in plain words, without the decoder's regular expression."""
    status, body, _ = await api.post("/v1/tokens", json={"scopes": ["root"]})
    assert status == 422
    reason = body["error"]["details"]["fields"]["scopes"]
    assert "root" in reason and "^" not in reason and "\\" not in reason and "|" not in reason, reason


async def test_bad_to_filter_is_an_invalid_query(api: ApiClient) -> None:
    """A bad ``?to=`` is "invalid query", not "request body is invalid"."""
    status, body, _ = await api.get("/v1/messages", params={"to": "not a number"})
    assert status == 422 and body["error"]["message"] == "invalid query"
    assert "to" in body["error"]["details"]["fields"]


async def _pair_statuses(api: ApiClient, forwarded: list[str]) -> list[int]:
    statuses = []
    for address in forwarded:
        status, _, _ = await api.with_token(None).post(
            "/v1/relay/app/pair",
            json={"code": "ABCD-EFGH", "name": "n", "model": "m", "app_version": "1"},
            headers={"X-Forwarded-For": address},
        )
        statuses.append(status)
    return statuses


async def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Rotating X-Forwarded-For cannot dodge the per-address pairing limit; a trusted proxy's is used."""
    addresses = [f"203.0.113.{i}" for i in range(1, 7)]
    running = await start_gateway(database_url, pair_rate_per_second=0.001, pair_burst=3)
    try:
        statuses = await _pair_statuses(ApiClient(session, running.base_url), addresses)
        assert statuses[:3] == [404, 404, 404] and set(statuses[3:]) == {429}, statuses
    finally:
        await running.stop()
    running = await start_gateway(
        database_url, pair_rate_per_second=0.001, pair_burst=3, trusted_proxies=("127.0.0.1",)
    )
    try:
        statuses = await _pair_statuses(ApiClient(session, running.base_url), addresses)
        assert statuses == [404] * 6, statuses  # each forwarded address has its own bucket
    finally:
        await running.stop()


async def test_pending_pairing_codes_are_capped(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MAX_PENDING_PAIRING_CODES live codes (lowered to 5 here): then rate_limited with
    Retry-After and a reason; spending a code frees its slot."""
    monkeypatch.setattr(devices_api, "MAX_PENDING_PAIRING_CODES", 5)
    codes = []
    for _ in range(5):
        status, created, _ = await api.post("/v1/devices/pairing-codes")
        assert status == 201
        codes.append(created["code"])
    status, body, headers = await api.post("/v1/devices/pairing-codes")
    assert status == 429 and body["error"]["details"]["reason"] == "pending_pairing_codes", body
    assert 500 <= int(headers["Retry-After"]) <= 601
    status, _, _ = await api.with_token(None).post(
        "/v1/relay/app/pair", json={"code": codes[0], "name": "n", "model": "m", "app_version": "1"}
    )
    assert status == 200
    assert (await api.post("/v1/devices/pairing-codes"))[0] == 201


async def test_webhook_endpoints_and_tokens_are_capped(api: ApiClient) -> None:
    """Past the endpoint and token ceilings: validation_error with details.reason; deleting frees one."""
    ids = []
    for i in range(limits.MAX_WEBHOOK_ENDPOINTS):
        status, hook, _ = await api.post(
            "/v1/webhooks", json={"url": f"http://127.0.0.1:9/h{i}", "events": ["message.sent"]}
        )
        assert status == 201, hook
        ids.append(hook["webhook"]["id"])
    status, body, _ = await api.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["message.sent"]}
    )
    assert status == 422 and body["error"]["details"] == {"reason": "webhook_endpoints", "limit": 20}
    assert (await api.request("DELETE", f"/v1/webhooks/{ids[0]}"))[0] == 200
    status, _, _ = await api.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["message.sent"]}
    )
    assert status == 201

    status, listing, _ = await api.get("/v1/tokens")
    active = sum(1 for t in listing["tokens"] if t["revoked_at"] is None)
    for _ in range(limits.MAX_ACTIVE_TOKENS - active):
        assert (await api.post("/v1/tokens", json={"scopes": ["account.read"]}))[0] == 201
    status, body, _ = await api.post("/v1/tokens", json={"scopes": ["account.read"]})
    assert status == 422 and body["error"]["details"]["reason"] == "access_tokens"


async def test_idempotency_keys_have_a_daily_budget(api: ApiClient, gateway: RunningGateway) -> None:
    """Keyed requests beyond the account's daily budget are rate_limited; unkeyed sends still go."""
    budget = gateway.gateway.services.idempotency_budget  # type: ignore[union-attr]
    budget.limit = 3
    for i in range(3):
        status, _, _ = await api.post(
            "/v1/sms/send", json={"to": "+998901234567", "message": "x"}, headers={"Idempotency-Key": f"k{i}"}
        )
        assert status == 200
    status, body, headers = await api.post(
        "/v1/sms/send", json={"to": "+998901234567", "message": "x"}, headers={"Idempotency-Key": "k9"}
    )
    assert (
        status == 429
        and body["error"]["details"]["reason"] == "idempotency_keys"
        and "Retry-After" in headers
    )
    assert (await api.post("/v1/sms/send", json={"to": "+998901234567", "message": "x"}))[0] == 200


def test_daily_budget_window() -> None:
    """The budget forgets events older than 24 hours and says how long to wait."""
    now = [1_000_000.0]
    budget = limits.DailyBudget(2, clock=lambda: now[0])
    assert budget.take("a") == 0 and budget.take("a") == 0
    assert 0 < budget.take("a") <= 24 * 3600
    assert budget.take("b") == 0
    now[0] += 24 * 3600 + 3600
    assert budget.take("a") == 0


async def test_every_answer_carries_ratelimit_headers(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Per-token GCRA: RateLimit-* on successes and refusals alike; past the burst a 429 with
    Retry-After and reason token_rate; another token of the same account is not affected."""
    running = await start_gateway(database_url, api_rate_per_second=0.01, api_rate_burst=3)
    try:
        account_id, token = await make_account(database_url, "rl")
        api = ApiClient(session, running.base_url, token)
        first = await api.get("/v1/account")
        assert (
            first[0] == 200 and first[2]["RateLimit-Limit"] == "3" and first[2]["RateLimit-Remaining"] == "2"
        )
        refused = await api.get("/v1/messages", params={"limit": "0"})
        assert refused[0] == 422 and refused[2]["RateLimit-Remaining"] == "1"
        assert (await api.get("/v1/account"))[0] == 200
        status, body, headers = await api.get("/v1/account")
        assert status == 429 and body["error"]["details"]["reason"] == "token_rate"
        assert int(headers["Retry-After"]) >= 1 and headers["RateLimit-Remaining"] == "0"
        status, created, _ = await ApiClient(session, running.base_url, token).get("/v1/tokens")
        assert status == 429  # the same token stays limited
        _, other = await make_account(database_url, "rl2")
        assert (await api.with_token(other).get("/v1/account"))[0] == 200
        assert account_id.startswith("acc_") and created["ok"] is False
    finally:
        await running.stop()
