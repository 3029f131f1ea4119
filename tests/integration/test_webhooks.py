"""Webhooks through real sockets: a real aiohttp receiver, signatures checked with the
``standardwebhooks`` package, retries and their spacing, 410, Retry-After, rotation, a hanging
endpoint, kill -9 between commit and delivery, the SSRF guard and bad input."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.harness import ApiClient, GatewayProcess, RunningGateway, eventually, make_account, start_gateway
from tests.relay_client import HEARTBEAT, RawRelay, pair_relay
from tests.webhook_receiver import Received, Receiver

TO = "+998901234567"
FAST = (0.0, 0.3, 0.6, 0.9)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver on a free port."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def fast_gateway(database_url: str) -> AsyncIterator[RunningGateway]:
    """A gateway whose webhook retries come after 0.3 s, 0.6 s and 0.9 s."""
    running = await start_gateway(database_url, webhook_schedule=FAST, webhook_timeout=2.0)
    yield running
    await running.stop()


@pytest.fixture
def wapi(fast_gateway: RunningGateway, session: aiohttp.ClientSession, account: tuple[str, str]) -> ApiClient:
    """A client of the fast gateway."""
    return ApiClient(session, fast_gateway.base_url, account[1])


async def register(api: ApiClient, url: str, events: list[str] | None = None) -> dict[str, Any]:
    """POST /v1/webhooks, expecting 201."""
    status, body, _ = await api.post("/v1/webhooks", json={"url": url, "events": events or ["webhook.test"]})
    assert status == 201, body
    return dict(body)


def verify(secret: str, request: Received) -> dict[str, Any]:
    """Verify with the standardwebhooks package (an implementation we did not write)."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def delivery_of(api: ApiClient, **filters: str) -> dict[str, Any]:
    """The single delivery matching the filters, with its attempts."""
    _, listing, _ = await api.get("/v1/webhooks/deliveries", params=filters)
    assert len(listing["deliveries"]) == 1, listing
    _, detail, _ = await api.get(f"/v1/webhooks/deliveries/{listing['deliveries'][0]['id']}")
    return dict(detail)


async def wait_delivery_status(
    api: ApiClient, status: str, timeout: float = 10, **filters: str
) -> dict[str, Any]:
    """Poll the delivery log until the delivery reaches ``status``."""

    async def reached() -> bool:
        _, listing, _ = await api.get("/v1/webhooks/deliveries", params=filters)
        return bool(listing["deliveries"]) and listing["deliveries"][0]["status"] == status

    await eventually(reached, timeout=timeout, interval=0.05, what=f"a delivery {status}")
    return await delivery_of(api, **filters)


async def test_every_event_type_arrives_once_signed(
    api: ApiClient, gateway: RunningGateway, receiver: Receiver, database_url: str
) -> None:
    """message.sent/delivered/failed, device.online/offline, webhook.test and otp.verified (from
    the outbox) each arrive exactly once, verified with standardwebhooks, with the documented body."""
    hook = await register(
        api,
        receiver.url(),
        [
            "message.sent",
            "message.delivered",
            "message.failed",
            "device.online",
            "device.offline",
            "webhook.test",
            "otp.verified",
        ],
    )
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    _, ok, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hi", "metadata": {"order": 7}})
    command = await relay.recv()
    for status in ("sent", "delivered"):
        await relay.send(
            {"type": "report", "id": command["id"], "status": status, "at": "2026-11-23T10:00:00Z"}
        )
        await relay.recv()
    _, failing, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "will fail"})
    command2 = await relay.recv()
    await relay.send(
        {
            "type": "report",
            "id": command2["id"],
            "status": "failed",
            "reason": "invalid_destination",
            "at": "2026-11-23T10:00:00Z",
        }
    )
    await relay.recv()
    await relay.send(HEARTBEAT)
    relay.kill()
    await api.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    conn = await asyncpg.connect(database_url)
    try:  # an otp.verified event as the OTP feature writes it
        account_id = (await api.get("/v1/account"))[1]["account"]["id"]
        await conn.execute(
            "INSERT INTO events (id, account_id, type, data) VALUES ('evt_otpverified0000000000000000', $1,"
            " 'otp.verified', '{\"otp_id\": \"otp_x\"}')",
            account_id,
        )
    finally:
        await conn.close()
    received = await receiver.wait_for("/hook", 7)
    await asyncio.sleep(0.3)
    assert len(receiver.on("/hook")) == 7
    payloads = [verify(hook["secret"], r) for r in received]
    types = sorted(p["type"] for p in payloads)
    assert types == sorted(
        [
            "message.sent",
            "message.delivered",
            "message.failed",
            "device.online",
            "device.offline",
            "webhook.test",
            "otp.verified",
        ]
    )
    assert len({r.headers["webhook-id"] for r in received}) == 7
    by_type = {p["type"]: p for p in payloads}
    delivered = by_type["message.delivered"]["data"]
    assert delivered["request_id"] == ok["request_id"] and delivered["status"] == "delivered"
    assert delivered["to"] == TO and delivered["device_id"] == paired["device_id"]
    assert delivered["device_name"] == "Relay Device 1" and delivered["attempts"] == 1
    assert delivered["metadata"] == {"order": 7} and delivered["failure_reason"] is None
    failed = by_type["message.failed"]["data"]
    assert failed["request_id"] == failing["request_id"] and failed["failure_reason"] == "invalid_destination"
    assert by_type["device.offline"]["data"]["device_id"] == paired["device_id"]
    assert by_type["message.sent"]["timestamp"].endswith("Z")


async def test_failing_receiver_gets_n_plus_one_attempts(wapi: ApiClient, receiver: Receiver) -> None:
    """A receiver failing 3 times then succeeding gets exactly 4 attempts, spaced per the
    schedule, all with one webhook-id, each logged."""
    receiver.script["/flaky"] = lambda n: (
        web.Response(status=500, text="boom") if n <= 3 else web.Response(text="ok")
    )
    hook = await register(wapi, receiver.url("/flaky"))
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    received = await receiver.wait_for("/flaky", 4)
    detail = await wait_delivery_status(wapi, "succeeded")
    await asyncio.sleep(0.5)
    assert len(receiver.on("/flaky")) == 4
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert len({r.headers["webhook-timestamp"] for r in received}) >= 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    for gap, planned in zip(gaps, FAST[1:], strict=True):
        assert planned * 0.85 <= gap <= planned * 1.1 + 0.5, (gaps, FAST)
    log = detail["attempts_log"]
    assert [a["outcome"] for a in log] == ["failed", "failed", "failed", "succeeded"]
    assert [a["http_status"] for a in log] == [500, 500, 500, 200]
    assert (
        log[0]["response_excerpt"] == "boom"
        and log[0]["next_attempt_at"]
        and log[-1]["next_attempt_at"] is None
    )
    assert all(a["trigger"] == "scheduled" and a["duration_ms"] is not None for a in log)
    assert detail["delivery"]["attempts"] == 4


async def test_after_the_last_attempt_the_delivery_fails(wapi: ApiClient, receiver: Receiver) -> None:
    """A receiver that never succeeds gets one attempt per schedule entry, then the delivery is failed;
    a manual retry redelivers with the same webhook-id and is logged as manual."""
    receiver.script["/down"] = lambda n: web.Response(status=502)
    hook = await register(wapi, receiver.url("/down"))
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    detail = await wait_delivery_status(wapi, "failed")
    assert len(detail["attempts_log"]) == len(FAST) == len(receiver.on("/down"))
    receiver.script["/down"] = lambda n: web.Response(status=204)
    status, _, _ = await wapi.post(f"/v1/webhooks/deliveries/{detail['delivery']['id']}/retry")
    assert status == 202
    detail = await wait_delivery_status(wapi, "succeeded")
    assert detail["attempts_log"][-1]["trigger"] == "manual"
    ids = {r.headers["webhook-id"] for r in receiver.on("/down")}
    assert len(ids) == 1


async def test_410_disables_the_endpoint(wapi: ApiClient, receiver: Receiver) -> None:
    """410 Gone fails the delivery without retries and disables the endpoint."""
    receiver.script["/gone"] = lambda n: web.Response(status=410)
    hook = await register(wapi, receiver.url("/gone"))
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    detail = await wait_delivery_status(wapi, "failed")
    await asyncio.sleep(0.8)
    assert len(receiver.on("/gone")) == 1 and len(detail["attempts_log"]) == 1
    _, endpoint, _ = await wapi.get(f"/v1/webhooks/{hook['webhook']['id']}")
    assert endpoint["webhook"]["enabled"] is False and "410" in endpoint["webhook"]["disabled_reason"]


async def test_retry_after_is_honoured(wapi: ApiClient, receiver: Receiver) -> None:
    """429 with Retry-After: 2 delays the next attempt by 2 s instead of the 0.3 s schedule."""
    receiver.script["/busy"] = lambda n: (
        web.Response(status=429, headers={"Retry-After": "2"}) if n == 1 else web.Response(text="ok")
    )
    hook = await register(wapi, receiver.url("/busy"))
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    received = await receiver.wait_for("/busy", 2, timeout=10)
    assert 1.9 <= received[1].at - received[0].at <= 3.5


async def test_secret_rotation_signs_with_both(wapi: ApiClient, receiver: Receiver) -> None:
    """After a rotation both the old and the new secret verify, for 24 hours."""
    hook = await register(wapi, receiver.url())
    status, rotated, _ = await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/rotate-secret")
    assert status == 200 and rotated["secret"] != hook["secret"]
    assert rotated["webhook"]["previous_secret_expires_at"]
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    (request,) = await receiver.wait_for("/hook", 1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(hook["secret"], request)["type"] == "webhook.test"
    assert verify(rotated["secret"], request)["type"] == "webhook.test"
    with pytest.raises(Exception, match=r"(?i)signature"):
        verify("whsec_" + "A" * 43 + "=", request)


async def test_hanging_endpoint_does_not_delay_a_healthy_one(wapi: ApiClient, receiver: Receiver) -> None:
    """Deliveries to a healthy endpoint arrive at once while another endpoint hangs."""

    async def hang(n: int) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    receiver.script["/hang"] = hang
    slow = await register(wapi, receiver.url("/hang"))
    fast = await register(wapi, receiver.url("/fast"))
    for _ in range(6):
        await wapi.post(f"/v1/webhooks/{slow['webhook']['id']}/test")
    await receiver.wait_for("/hang", 4)
    for _ in range(3):
        await wapi.post(f"/v1/webhooks/{fast['webhook']['id']}/test")
    started = asyncio.get_running_loop().time()
    await receiver.wait_for("/fast", 3, timeout=3)
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_event_survives_kill_9_between_commit_and_delivery(
    database_url: str, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """An event committed while the receiver is down, then kill -9 of the gateway: after a
    restart the event is still delivered."""
    receiver.script["/later"] = lambda n: web.Response(status=503) if n == 1 else web.Response(text="ok")
    gateway = GatewayProcess(
        database_url, RELAYGATE_WEBHOOK_ALLOW_PRIVATE="1", RELAYGATE_WEBHOOK_SCHEDULE="0,30"
    )
    await gateway.start()
    _, token = await make_account(database_url)
    api = ApiClient(session, gateway.base_url, token)
    try:
        hook = await register(api, receiver.url("/later"))
        await api.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
        await receiver.wait_for("/later", 1)
        await gateway.kill()
        gateway2 = GatewayProcess(
            database_url, RELAYGATE_WEBHOOK_ALLOW_PRIVATE="1", RELAYGATE_WEBHOOK_SCHEDULE="0,0.5"
        )
        await gateway2.start()
        try:
            conn = await asyncpg.connect(database_url)
            try:  # mock time: the retry planned 30 s out is due now
                await conn.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
            finally:
                await conn.close()
            received = await receiver.wait_for("/later", 2, timeout=15)
            assert verify(hook["secret"], received[1])["type"] == "webhook.test"
            assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
        finally:
            await gateway2.stop()
    finally:
        await gateway.stop()


async def test_outbox_event_committed_before_a_crash_is_delivered(
    database_url: str, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """Events committed while no gateway runs (as after a crash right after the commit) are fanned
    out and delivered when a gateway starts."""
    account_id, token = await make_account(database_url)
    running = await start_gateway(database_url)
    api = ApiClient(session, running.base_url, token)
    hook = await register(api, receiver.url("/outbox"), ["message.failed"])
    await running.stop()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO events (id, account_id, type, data) VALUES ('evt_crash00000000000000000000', $1,"
            " 'message.failed', '{\"request_id\": \"req_x\"}')",
            account_id,
        )
    finally:
        await conn.close()
    running = await start_gateway(database_url)
    try:
        (request,) = await receiver.wait_for("/outbox", 1)
        assert verify(hook["secret"], request)["data"]["request_id"] == "req_x"
    finally:
        await running.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://100.64.1.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:9/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
        "not a url",
    ],
)
async def test_ssrf_targets_refused_when_not_allowed(
    database_url: str, session: aiohttp.ClientSession, url: str
) -> None:
    """Without RELAYGATE_WEBHOOK_ALLOW_PRIVATE, non-public and non-http targets are refused."""
    running = await start_gateway(database_url, webhook_allow_private=False)
    _, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        status, body, _ = await api.post("/v1/webhooks", json={"url": url, "events": ["webhook.test"]})
        assert status == 422 and "url" in body["error"]["details"]["fields"], body
        _, listing, _ = await api.get("/v1/webhooks")
        assert listing["webhooks"] == []
    finally:
        await running.stop()


async def test_delivery_time_guard_blocks_and_does_not_retry(
    database_url: str, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A target that became private after registration (DNS change) is blocked at delivery,
    logged as blocked, never contacted and never retried."""
    running = await start_gateway(database_url, webhook_allow_private=False, webhook_schedule=FAST)
    account_id, token = await make_account(database_url)
    api = ApiClient(session, running.base_url, token)
    try:
        conn = await asyncpg.connect(database_url)
        try:
            for endpoint_id, url in [
                ("whk_01M83Z000000000000000000A1", receiver.url("/x")),
                ("whk_01M83Z000000000000000000A2", f"http://localhost:{receiver.port}/y"),
            ]:
                await conn.execute(
                    "INSERT INTO webhook_endpoints (id, account_id, url, events, secret) VALUES ($1, $2, $3,"
                    " '{webhook.test}', 'whsec_" + "A" * 43 + "=')",
                    endpoint_id,
                    account_id,
                    url,
                )
                await api.post(f"/v1/webhooks/{endpoint_id}/test")
        finally:
            await conn.close()
        for endpoint_id in ("whk_01M83Z000000000000000000A1", "whk_01M83Z000000000000000000A2"):
            detail = await wait_delivery_status(api, "blocked", webhook_id=endpoint_id)
            assert [a["outcome"] for a in detail["attempts_log"]] == ["blocked"]
            assert detail["attempts_log"][0]["error"].startswith("blocked")
        await asyncio.sleep(1.0)
        assert receiver.requests == []
    finally:
        await running.stop()


async def test_redirects_are_not_followed(wapi: ApiClient, receiver: Receiver) -> None:
    """A 302 is a failed attempt; the redirect target is never requested."""
    receiver.script["/moved"] = lambda n: web.Response(
        status=302, headers={"Location": receiver.url("/target")}
    )
    hook = await register(wapi, receiver.url("/moved"))
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    detail = await wait_delivery_status(wapi, "failed")
    assert {a["http_status"] for a in detail["attempts_log"]} == {302}
    assert receiver.on("/target") == []


async def test_endpoint_crud_and_bad_input(wapi: ApiClient, receiver: Receiver, database_url: str) -> None:
    """Create, list, get, patch, delete; bad bodies, unknown and foreign ids, and the scope."""
    hook = await register(wapi, receiver.url(), ["message.sent", "message.failed"])
    assert hook["secret"].startswith("whsec_") and hook["webhook"]["events"] == [
        "message.sent",
        "message.failed",
    ]
    endpoint_id = hook["webhook"]["id"]
    _, listing, _ = await wapi.get("/v1/webhooks")
    assert [w["id"] for w in listing["webhooks"]] == [endpoint_id] and "secret" not in listing["webhooks"][0]
    status, patched, _ = await wapi.request(
        "PATCH", f"/v1/webhooks/{endpoint_id}", json={"enabled": False, "events": ["message.delivered"]}
    )
    assert (
        status == 200
        and patched["webhook"]["enabled"] is False
        and patched["webhook"]["events"] == ["message.delivered"]
    )
    for bad in [
        {"url": receiver.url(), "events": []},
        {"url": receiver.url(), "events": ["message.exploded"]},
        {"url": receiver.url()},
        {"events": ["message.sent"]},
        {"url": 5, "events": ["message.sent"]},
        {"url": receiver.url(), "events": ["message.sent"], "secret": "mine"},
        {"url": receiver.url() + "x" * 3000, "events": ["message.sent"]},
    ]:
        status, body, _ = await wapi.post("/v1/webhooks", json=bad)
        assert status == 422 and body["error"]["code"] == "validation_error", bad
    for bad in [{"enabled": "no"}, {"url": "gopher://x"}, {"events": []}]:
        status, _, _ = await wapi.request("PATCH", f"/v1/webhooks/{endpoint_id}", json=bad)
        assert status == 422, bad
    _, other = await make_account(database_url, "other")
    other_api = wapi.with_token(other)
    for method, path in [
        ("GET", f"/v1/webhooks/{endpoint_id}"),
        ("PATCH", f"/v1/webhooks/{endpoint_id}"),
        ("DELETE", f"/v1/webhooks/{endpoint_id}"),
        ("POST", f"/v1/webhooks/{endpoint_id}/test"),
        ("POST", f"/v1/webhooks/{endpoint_id}/rotate-secret"),
        ("GET", "/v1/webhooks/deliveries/dlv_nope"),
        ("POST", "/v1/webhooks/deliveries/dlv_nope/retry"),
        ("GET", "/v1/webhooks/whk_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ]:
        status, _, _ = await other_api.request(method, path, json={} if method == "PATCH" else None)
        assert status == 404, (method, path)
    for params in [{"status": "lost"}, {"event_type": "nope"}, {"limit": "999"}]:
        status, _, _ = await wapi.get("/v1/webhooks/deliveries", params=params)
        assert status == 422, params
    _, reader = await make_account(database_url, "reader", scopes=["account.read"])
    assert (await wapi.with_token(reader).get("/v1/webhooks"))[0] == 403
    status, deleted, _ = await wapi.request("DELETE", f"/v1/webhooks/{endpoint_id}")
    assert status == 200 and deleted["deleted"] is True
    assert (await wapi.get(f"/v1/webhooks/{endpoint_id}"))[0] == 404
    _, listing, _ = await wapi.get("/v1/webhooks")
    assert listing["webhooks"] == []


async def test_delivery_log_filters(
    wapi: ApiClient, fast_gateway: RunningGateway, receiver: Receiver
) -> None:
    """Deliveries can be filtered by webhook, event type, status and request_id."""
    hook = await register(wapi, receiver.url(), ["message.sent", "webhook.test"])
    paired = await pair_relay(wapi)
    relay = await RawRelay.connect(fast_gateway.relay_url, paired["device_token"])
    _, sent, _ = await wapi.post("/v1/sms/send", json={"to": TO, "message": "x"})
    command = await relay.recv()
    await relay.send({"type": "report", "id": command["id"], "status": "sent", "at": "2026-11-23T10:00:00Z"})
    await relay.recv()
    await wapi.post(f"/v1/webhooks/{hook['webhook']['id']}/test")
    await receiver.wait_for("/hook", 2)
    detail = await wait_delivery_status(wapi, "succeeded", request_id=sent["request_id"])
    assert detail["delivery"]["event_type"] == "message.sent"
    assert detail["payload"]["data"]["request_id"] == sent["request_id"]
    _, by_type, _ = await wapi.get("/v1/webhooks/deliveries", params={"event_type": "webhook.test"})
    assert len(by_type["deliveries"]) == 1
    _, by_hook, _ = await wapi.get(
        "/v1/webhooks/deliveries", params={"webhook_id": hook["webhook"]["id"], "limit": "1"}
    )
    assert len(by_hook["deliveries"]) == 1 and by_hook["next_cursor"]
    _, none, _ = await wapi.get("/v1/webhooks/deliveries", params={"status": "failed"})
    assert none["deliveries"] == []
