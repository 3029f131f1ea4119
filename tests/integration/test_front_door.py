"""The front door runs endpoints without path parameters from its direct table; everything else
goes through Starlette's router. A client must not be able to tell the two ways apart: the same
error shapes, the same 404/405 answers, the guard before both, and the connection kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from gateway.api import ENDPOINTS
from gateway.api.front_door import FrontDoor
from gateway.api.routing import Endpoint, direct_table
from gateway.app import error_response
from gateway.clock import SYSTEM_CLOCK
from tests.harness import ApiClient, DatabaseFactory, make_account, start_gateway

DIRECT = sorted(direct_table(ENDPOINTS))
TOKENED = [(m, p) for m, p in DIRECT if next(e for e in ENDPOINTS if (e.method, e.path) == (m, p)).scope]


@pytest.fixture(scope="module")
async def api(databases: DatabaseFactory) -> AsyncIterator[ApiClient]:
    database_url = await databases.create()
    running = await start_gateway(database_url)
    _, token = await make_account(database_url)
    connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection for every request
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield ApiClient(session, running.base_url.removesuffix("/api"), token)
    await running.stop()


def test_the_hot_endpoints_are_in_the_direct_table() -> None:
    assert {
        ("POST", "/api/v1/sms/send"),
        ("POST", "/api/v1/otp/send"),
        ("POST", "/api/v1/otp/verify"),
    } <= set(DIRECT)
    assert all("{" not in path for _, path in DIRECT)


@pytest.mark.parametrize(("method", "path"), TOKENED)
async def test_direct_endpoints_refuse_like_routed_ones(api: ApiClient, method: str, path: str) -> None:
    """No token and a wrong token: the answers of a routed endpoint (with a path parameter)."""
    routed = "/api/v1/webhooks/whk_00000000000000000000000000"
    for token in (None, "rgat_wrong"):
        client = api.with_token(token)
        status, body, _ = await client.request(method, path)
        routed_status, routed_body, _ = await client.request("GET", routed)
        assert (status, body) == (routed_status, routed_body) and status == 401, body


async def test_wrong_methods_and_unknown_paths_go_to_the_router(api: ApiClient) -> None:
    status, body, headers = await api.get("/api/v1/sms/send")
    assert status == 405 and body["error"]["code"] == "method_not_allowed", body
    assert headers["Allow"] == "POST"
    status, body, _ = await api.post("/api/v1/sms/sendx", json={})
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, _, _ = await api.request("HEAD", "/api/v1/health")
    assert status == 200


async def test_the_guard_comes_before_the_direct_table(api: ApiClient) -> None:
    status, body, _ = await api.request("POST", "/api/v1/sms/send", params={"x": "a\x00b"})
    assert status == 422 and body["error"]["details"] == {
        "fields": {"x": "must not contain control characters"}
    }


async def test_bodies_are_read_and_refused_in_the_one_shape(api: ApiClient) -> None:
    status, body, _ = await api.post("/api/v1/sms/send", data=b"{not json")
    assert status == 422 and body["error"]["code"] == "validation_error", body
    status, body, _ = await api.post("/api/v1/sms/send", json={"to": "+99890", "message": "hi"})
    assert status == 422 and "to" in body["error"]["details"]["fields"], body
    status, body, headers = await api.post("/api/v1/sms/send", json={"to": "+998901234567", "message": "hi"})
    assert status == 200 and body["status"] == "queued", body
    assert headers["RateLimit-Remaining"].isdigit()


# --- an endpoint that fails unexpectedly --------------------------------------------------------


async def _boom(call: Any) -> None:
    raise RuntimeError("secret detail")


async def _asgi(app: Any, method: str, path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def test_an_unexpected_error_of_a_direct_endpoint_is_a_500_in_the_one_shape() -> None:
    """The direct path answers (and does not re-raise): the body hides the detail."""
    boom = Endpoint("GET", "/boom", _boom, "fails", "test", {200: dict})
    app = Starlette(middleware=[Middleware(FrontDoor, endpoints=[boom], on_error=error_response)])
    app.state.services = SimpleNamespace(clock=SYSTEM_CLOCK)
    status, body = await _asgi(app, "GET", "/boom")
    assert status == 500 and msgspec.json.decode(body)["error"]["code"] == "internal"
    assert b"secret" not in body
    status, _ = await _asgi(app, "GET", "/other")  # not in the table: Starlette's own 404
    assert status == 404
