"""The foundation through a real server: auth, tokens, scopes, the error shape, health."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import aiohttp
import asyncpg

from gateway.access.tokens import DEVICE_PREFIX, generate_token
from gateway.errors import ApiError
from tests.harness import ApiClient, RunningGateway, TcpProxy, make_account, start_gateway


def _is_error(body: object, code: str) -> bool:
    return (
        isinstance(body, dict)
        and body.get("ok") is False
        and body["error"]["code"] == code
        and isinstance(body["error"]["message"], str)
        and isinstance(body["error"]["details"], dict)
    )


async def test_health_needs_no_token(gateway: RunningGateway, session: aiohttp.ClientSession) -> None:
    """Health answers without a token: process, database, version, uptime."""
    status, body, _ = await ApiClient(session, gateway.base_url).get("/v1/health")
    assert status == 200
    assert body["ok"] is True and body["status"] == "ok" and body["database"] == "ok"
    assert body["version"] and body["uptime_seconds"] >= 0


async def test_health_reports_database_down_quickly(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """With PostgreSQL cut off, health answers 503 database=down within 2 s, then recovers."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    running = await start_gateway(proxy.url)
    client = ApiClient(session, running.base_url)
    try:
        await proxy.stop()
        started = time.monotonic()
        status, body, _ = await client.get("/v1/health")
        assert time.monotonic() - started < 2.0
        assert status == 503 and body["database"] == "down" and body["ok"] is False
        await proxy.start()
        for _ in range(20):
            status, body, _ = await client.get("/v1/health")
            if status == 200:
                break
        assert status == 200 and body["database"] == "ok"
    finally:
        await running.stop()
        await proxy.stop()


async def test_account_and_auth_failures(api: ApiClient, account: tuple[str, str]) -> None:
    """A valid token reads its account; missing, malformed, unknown and device tokens are 401."""
    status, body, _ = await api.get("/v1/account")
    assert status == 200 and body["account"]["id"] == account[0] and body["subscription_active"] is True
    for header in [
        None,
        "Basic abc",
        "Bearer",
        "Bearer rgat_short",
        "Bearer " + generate_token("rgat"),
        "Bearer " + generate_token(DEVICE_PREFIX),
    ]:
        headers = {"Authorization": header} if header else {}
        status, body, _ = await api.with_token(None).get("/v1/account", headers=headers)
        assert status == 401 and _is_error(body, "unauthorized"), header


async def test_malformed_token_is_refused_without_the_database(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A bad checksum is refused (401) even while the database is unreachable: no query is made."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    running = await start_gateway(proxy.url)
    try:
        await proxy.stop()
        bad = generate_token("rgat")[:-1] + "0"
        status, body, _ = await ApiClient(session, running.base_url, bad).get("/v1/account")
        assert status == 401 and _is_error(body, "unauthorized")
        good_shape = generate_token("rgat")
        status, body, _ = await ApiClient(session, running.base_url, good_shape).get("/v1/account")
        assert status == 503 and _is_error(body, "unavailable")
    finally:
        await running.stop()
        await proxy.stop()


async def test_tokens_create_list_revoke(api: ApiClient, gateway: RunningGateway) -> None:
    """A created token works at once with exactly its scopes; revocation takes effect immediately."""
    status, body, _ = await api.post("/v1/tokens", json={"scopes": ["account.read"], "name": "reader"})
    assert status == 201 and body["token"].startswith("rgat_")
    new_token, new_id = body["token"], body["token_info"]["id"]
    assert body["token_info"]["scopes"] == ["account.read"]
    reader = api.with_token(new_token)
    assert (await reader.get("/v1/account"))[0] == 200
    status, body, _ = await reader.get("/v1/tokens")
    assert status == 403 and _is_error(body, "forbidden") and body["error"]["details"]["required_scope"]

    status, body, _ = await api.get("/v1/tokens", params={"limit": "1"})
    assert status == 200 and len(body["tokens"]) == 1 and body["next_cursor"]
    status, page2, _ = await api.get("/v1/tokens", params={"limit": "1", "cursor": body["next_cursor"]})
    assert {t["id"] for t in body["tokens"] + page2["tokens"]} >= {new_id}

    status, body, _ = await api.request("DELETE", f"/v1/tokens/{new_id}")
    assert status == 200 and body["token_info"]["revoked_at"]
    status, body, _ = await reader.get("/v1/account")
    assert status == 401 and _is_error(body, "unauthorized")
    status, body, _ = await api.request("DELETE", f"/v1/tokens/{new_id}")
    assert status == 200  # idempotent
    for unknown in ["tok_01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "x" * 300]:
        status, body, _ = await api.request("DELETE", f"/v1/tokens/{unknown}")
        assert status == 404 and _is_error(body, "not_found")


async def test_tokens_cannot_escalate_or_cross_accounts(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """A token cannot grant scopes it lacks, and one account cannot revoke another's token."""
    _, limited = await make_account(database_url, "small", scopes=["tokens.manage"])
    status, body, _ = await api.with_token(limited).post("/v1/tokens", json={"scopes": ["messages.send"]})
    assert status == 403 and body["error"]["details"]["scopes"] == ["messages.send"]
    status, body, _ = await api.with_token(limited).get("/v1/tokens")
    other_id = body["tokens"][0]["id"]
    status, body, _ = await api.request("DELETE", f"/v1/tokens/{other_id}")
    assert status == 404
    assert (await api.with_token(limited).get("/v1/tokens"))[0] == 200


async def test_tokens_are_stored_only_as_hashes(api: ApiClient, database_url: str) -> None:
    """No token text appears anywhere in the database; last_used_at is stamped on use."""
    _, body, _ = await api.post("/v1/tokens", json={"scopes": ["account.read"]})
    token = body["token"]
    await api.with_token(token).get("/v1/account")
    conn = await asyncpg.connect(database_url)
    try:
        dump = await conn.fetch("SELECT t::text AS row FROM access_tokens t")
        assert all(token not in r["row"] and api.token not in r["row"] for r in dump)
        used = await conn.fetchval(
            "SELECT last_used_at FROM access_tokens WHERE id = $1", body["token_info"]["id"]
        )
        assert used is not None
    finally:
        await conn.close()


async def test_error_shapes_for_bad_requests(api: ApiClient, gateway: RunningGateway) -> None:
    """Unknown route, wrong method, malformed JSON, wrong types, unknown fields, oversized bodies."""
    status, body, _ = await api.get("/v1/nowhere")
    assert status == 404 and _is_error(body, "not_found")
    status, body, headers = await api.request("PUT", "/v1/account")
    assert status == 405 and _is_error(body, "method_not_allowed") and "GET" in headers["Allow"]
    status, body, _ = await api.post(
        "/v1/tokens", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 422 and _is_error(body, "validation_error") and "body" in body["error"]["details"]
    status, body, _ = await api.post("/v1/tokens", json={"scopes": "account.read", "name": 5, "admin": True})
    assert status == 422 and set(body["error"]["details"]["fields"]) == {"scopes", "name", "admin"}
    status, body, _ = await api.post("/v1/tokens", json={"scopes": ["root"]})
    assert status == 422 and "scopes" in body["error"]["details"]["fields"]
    status, body, _ = await api.get("/v1/tokens", params={"limit": "0"})
    assert status == 422 and "limit" in body["error"]["details"]["fields"]
    huge = b'{"scopes": ["account.read"], "name": "' + b"x" * 400_000 + b'"}'
    status, body, _ = await api.post("/v1/tokens", data=huge, headers={"Content-Type": "application/json"})
    assert status == 413 and _is_error(body, "payload_too_large")

    async def chunks() -> object:
        for _ in range(100):
            yield b"x" * 8192

    status, body, _ = await api.post(
        "/v1/tokens", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert status == 413 and _is_error(body, "payload_too_large")
    status, body, _ = await api.get("/v1/tokens")
    assert len(body["tokens"]) == 1  # nothing was created by any bad request


async def test_rate_limit_answers_429_with_retry_after(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """Past the per-account burst the API answers rate_limited with Retry-After."""
    running = await start_gateway(database_url, api_rate_per_second=1.0, api_rate_burst=3)
    _, token = await make_account(database_url)
    client = ApiClient(session, running.base_url, token)
    try:
        statuses = [(await client.get("/v1/account"))[0] for _ in range(3)]
        status, body, headers = await client.get("/v1/account")
        assert statuses == [200, 200, 200]
        assert status == 429 and _is_error(body, "rate_limited") and int(headers["Retry-After"]) >= 1
    finally:
        await running.stop()


async def test_expired_subscription_blocks_sending_not_reading(
    gateway: RunningGateway, database_url: str
) -> None:
    """An expired account can read but every sending route refuses with subscription_expired (402)."""
    _, token = await make_account(database_url, "late", expires=date.today() - timedelta(days=2))
    authenticator = gateway.gateway.services.authenticator  # type: ignore[union-attr]
    principal, _ = await authenticator.authorize(f"Bearer {token}", "account.read")
    assert principal.account.subscription_active is not None
    try:
        await authenticator.authorize(f"Bearer {token}", "messages.send", sending=True)
    except ApiError as exc:
        assert exc.code == "subscription_expired" and exc.status == 402
    else:  # pragma: no cover
        raise AssertionError("sending was allowed on an expired subscription")


async def test_concurrent_requests_are_served(api: ApiClient) -> None:
    """Many concurrent authenticated calls succeed (pool and cache under contention)."""
    results = await asyncio.gather(*(api.get("/v1/account") for _ in range(50)))
    assert {r[0] for r in results} == {200}


async def test_metrics_in_prometheus_format(gateway: RunningGateway, session: aiohttp.ClientSession) -> None:
    """/metrics answers without a token in Prometheus text format with the live gauges."""
    async with session.get(f"http://127.0.0.1:{gateway.gateway.http_port}/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and line[0] != "#"
    }
    assert samples["relaygate_relays_online"] == 0 and samples["relaygate_queue_depth"] == 0
    assert samples["relaygate_uptime_seconds"] >= 0 and 'relaygate_info{version="' in text
    assert "# TYPE relaygate_messages_accepted_total counter" in text
