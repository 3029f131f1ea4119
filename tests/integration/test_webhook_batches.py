"""Batched webhook delivery (opt-in per endpoint): one signed request carrying many events,
sent when full or after the wait, retried together, every event still logged as its own delivery."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.harness import ApiClient, RunningGateway, eventually, start_gateway
from tests.webhook_receiver import Receiver

FAST = (0.0, 0.3, 0.6)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver on a free port."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def fast_gateway(database_url: str) -> AsyncIterator[RunningGateway]:
    """A gateway whose webhook retries come after 0.3 s and 0.6 s."""
    running = await start_gateway(database_url, webhook_schedule=FAST, webhook_timeout=2.0)
    yield running
    await running.stop()


@pytest.fixture
def wapi(fast_gateway: RunningGateway, session: aiohttp.ClientSession, account: tuple[str, str]) -> ApiClient:
    """A client of the fast gateway."""
    return ApiClient(session, fast_gateway.base_url, account[1])


async def register_batched(api: ApiClient, url: str, max_events: int, max_wait_ms: int) -> dict[str, Any]:
    """POST /v1/webhooks with batching, expecting 201."""
    status, body, _ = await api.post(
        "/v1/webhooks",
        json={
            "url": url,
            "events": ["webhook.test"],
            "batch": {"max_events": max_events, "max_wait_ms": max_wait_ms},
        },
    )
    assert status == 201, body
    return dict(body)


async def queue_tests(api: ApiClient, endpoint_id: str, count: int) -> list[str]:
    """``count`` webhook.test events for the endpoint; their event ids."""
    ids = []
    for _ in range(count):
        status, body, _ = await api.post(f"/v1/webhooks/{endpoint_id}/test")
        assert status == 202, body
        ids.append(body["event_id"])
    return ids


async def attempts_of(api: ApiClient, endpoint_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each delivery of the endpoint (by event id) with its attempts log."""
    _, listing, _ = await api.get("/v1/webhooks/deliveries", params={"webhook_id": endpoint_id})
    logs = {}
    for delivery in listing["deliveries"]:
        _, detail, _ = await api.get(f"/v1/webhooks/deliveries/{delivery['id']}")
        logs[delivery["event_id"]] = detail["attempts_log"]
    return logs


async def test_full_batch_is_one_signed_request(wapi: ApiClient, receiver: Receiver) -> None:
    """max_events due events go out at once as one request, signed once over the envelope, and
    each event is a delivery with its own succeeded attempt."""
    hook = await register_batched(wapi, receiver.url("/batch"), max_events=3, max_wait_ms=10_000)
    assert hook["webhook"]["batch"] == {"max_events": 3, "max_wait_ms": 10_000}
    endpoint_id = hook["webhook"]["id"]
    event_ids = await queue_tests(wapi, endpoint_id, 3)
    [request] = await receiver.wait_for("/batch", 1, timeout=8)  # full: long before the 10 s wait
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert request.headers["webhook-id"].startswith("whb_")
    assert payload["type"] == "batch" and payload["timestamp"].endswith("Z")
    events = payload["data"]["events"]
    assert [e["id"] for e in events] == sorted(event_ids)
    assert all(e["type"] == "webhook.test" and e["data"]["webhook_id"] == endpoint_id for e in events)

    async def all_logged() -> bool:
        logs = await attempts_of(wapi, endpoint_id)
        return len(logs) == 3 and all(len(log) == 1 for log in logs.values())

    await eventually(all_logged, timeout=5, interval=0.05, what="three logged attempts")
    logs = await attempts_of(wapi, endpoint_id)
    assert set(logs) == set(event_ids)
    assert all(log[0]["outcome"] == "succeeded" and log[0]["http_status"] == 200 for log in logs.values())


async def test_a_lone_event_waits_at_most_max_wait(wapi: ApiClient, receiver: Receiver) -> None:
    """One event for an endpoint batching 50 is sent after max_wait_ms, still as an envelope."""
    hook = await register_batched(wapi, receiver.url("/lone"), max_events=50, max_wait_ms=400)
    queued_at = time.monotonic()
    [event_id] = await queue_tests(wapi, hook["webhook"]["id"], 1)
    [request] = await receiver.wait_for("/lone", 1, timeout=8)
    assert 0.35 <= request.at - queued_at <= 5.0, request.at - queued_at
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert [e["id"] for e in payload["data"]["events"]] == [event_id]


async def test_a_failed_batch_is_retried_together(wapi: ApiClient, receiver: Receiver) -> None:
    """A batch answered 500 is retried on the schedule as the same batch (same webhook-id and
    events); each delivery logs both attempts."""
    receiver.script["/flaky"] = lambda n: web.Response(status=500, text="no") if n == 1 else web.Response()
    hook = await register_batched(wapi, receiver.url("/flaky"), max_events=2, max_wait_ms=5_000)
    endpoint_id = hook["webhook"]["id"]
    event_ids = await queue_tests(wapi, endpoint_id, 2)
    first, second = await receiver.wait_for("/flaky", 2, timeout=8)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body  # the same events, the same bytes
    assert 0.25 <= second.at - first.at <= 3.0

    async def both_succeeded() -> bool:
        logs = await attempts_of(wapi, endpoint_id)
        return len(logs) == 2 and all(len(log) == 2 for log in logs.values())

    await eventually(both_succeeded, timeout=5, interval=0.05, what="two attempts per delivery")
    logs = await attempts_of(wapi, endpoint_id)
    assert set(logs) == set(event_ids)
    for log in logs.values():
        assert [a["outcome"] for a in log] == ["failed", "succeeded"]
        assert log[0]["http_status"] == 500 and log[0]["response_excerpt"] == "no"


async def test_batch_setting_is_validated_and_can_be_switched(wapi: ApiClient, receiver: Receiver) -> None:
    """Out-of-range or unknown batch fields are refused; PATCH changes, keeps or removes it."""
    for bad in [
        {"max_events": 1},
        {"max_events": 101},
        {"max_events": 10, "max_wait_ms": -1},
        {"max_events": 10, "max_wait_ms": 10_001},
        {"max_events": 10, "every": 3},
        {"max_wait_ms": 100},
    ]:
        status, body, _ = await wapi.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["webhook.test"], "batch": bad}
        )
        assert status == 422 and body["error"]["code"] == "validation_error", bad
    status, plain, _ = await wapi.post(
        "/v1/webhooks", json={"url": receiver.url(), "events": ["webhook.test"]}
    )
    assert status == 201 and plain["webhook"]["batch"] is None
    path = f"/v1/webhooks/{plain['webhook']['id']}"
    status, patched, _ = await wapi.request("PATCH", path, json={"batch": {"max_events": 20}})
    assert status == 200 and patched["webhook"]["batch"] == {"max_events": 20, "max_wait_ms": 1000}
    status, patched, _ = await wapi.request("PATCH", path, json={"description": "kept"})
    assert status == 200 and patched["webhook"]["batch"] == {"max_events": 20, "max_wait_ms": 1000}
    status, patched, _ = await wapi.request("PATCH", path, json={"batch": None})
    assert status == 200 and patched["webhook"]["batch"] is None
