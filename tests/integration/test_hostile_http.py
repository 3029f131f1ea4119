"""Hostile input at the HTTP edge, class by class: strings PostgreSQL cannot store, control
characters in queries and paths, odd digits and dates, deep nesting, numbers out of range,
patterns with a trailing newline. Each is a 4xx in the one error shape and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.harness import ApiClient, DatabaseFactory, make_account, start_gateway
from tests.relay_client import pair_relay

NUL = "\x00"

# Tables whose row counts must not move when a request is refused.
COUNTED = (
    "recipients",
    "recipient_lists",
    "recipient_list_members",
    "messages",
    "access_tokens",
    "webhook_endpoints",
    "devices",
    "pairing_codes",
    "otps",
    "idempotency_keys",
    "events",
)


async def row_counts(database_url: str) -> dict[str, int]:
    """Rows per table, to prove a refused request changed nothing."""
    conn = await asyncpg.connect(database_url)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in COUNTED}
    finally:
        await conn.close()


def assert_refused(status: int, body: Any, *, code: str | None = None) -> None:
    """A 4xx in the one error shape (never a 5xx)."""
    assert 400 <= status < 500, (status, body)
    assert body["ok"] is False and set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body


class Env:
    """One gateway shared by this module's tests (they only send refused requests)."""

    def __init__(self, api: ApiClient, database_url: str, ids: dict[str, str]) -> None:
        self.api = api
        self.database_url = database_url
        self.ids = ids


@pytest.fixture(scope="module")
async def env(databases: DatabaseFactory) -> AsyncIterator[Env]:
    """A gateway, an account, a paired device and a webhook endpoint, for routes with path ids."""
    database_url = await databases.create()
    running = await start_gateway(database_url)
    _, token = await make_account(database_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = ApiClient(session, running.base_url, token)
        paired = await pair_relay(api)
        status, hook, _ = await api.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["message.sent"]}
        )
        assert status == 201, hook
        yield Env(api, database_url, {"device_id": paired["device_id"], "webhook_id": hook["webhook"]["id"]})
    await running.stop()


BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/sms/send", {"to": "+998901234567", "message": f"hi{NUL}"}, "message"),
    ("POST", "/v1/sms/send", {"to": f"+998901234567{NUL}", "message": "hi"}, "to"),
    (
        "POST",
        "/v1/sms/send",
        {"to": "+998901234567", "message": "hi", "metadata": {f"k{NUL}": 1}},
        "metadata",
    ),
    (
        "POST",
        "/v1/sms/send",
        {"to": "+998901234567", "message": "hi", "metadata": {"k": f"v{NUL}"}},
        "metadata",
    ),
    (
        "POST",
        "/v1/sms/send",
        {"to": "+998901234567", "message": "hi", "metadata": {"k": [{"deep": f"v{NUL}"}]}},
        "metadata",
    ),
    ("POST", "/v1/tokens", {"scopes": ["account.read"], "name": f"n{NUL}"}, "name"),
    (
        "POST",
        "/v1/webhooks",
        {"url": "http://127.0.0.1:9/h", "events": ["message.sent"], "description": NUL},
        "description",
    ),
    ("POST", "/v1/webhooks", {"url": f"http://127.0.0.1:9/h{NUL}", "events": ["message.sent"]}, "url"),
    ("PATCH", "/v1/webhooks/{webhook_id}", {"description": f"d{NUL}"}, "description"),
    ("PATCH", "/v1/devices/{device_id}", {"name": f"till{NUL}"}, "name"),
    (
        "POST",
        "/v1/otp/send",
        {"to": "+998901234567", "purpose": "login", "template": f"{{code}}{NUL}"},
        "template",
    ),
    ("POST", "/v1/otp/send", {"to": "+998901234567", "purpose": f"login{NUL}"}, "purpose"),
    ("POST", "/v1/otp/send", {"to": "+998901234567", "purpose": "login", "locale": f"en{NUL}"}, "locale"),
    (
        "POST",
        "/v1/otp/verify",
        {"to": "+998901234567", "purpose": f"login{NUL}", "code": "123456"},
        "purpose",
    ),
    (
        "POST",
        "/v1/relay/app/pair",
        {"code": "ABCD-EFGH", "name": f"p{NUL}", "model": "m", "app_version": "1"},
        "name",
    ),
]


@pytest.mark.parametrize(("method", "path", "payload", "field"), BODIES)
async def test_nul_in_json_strings_is_refused(
    env: Env, method: str, path: str, payload: dict[str, Any], field: str
) -> None:
    """U+0000 anywhere in a JSON body is a validation_error naming the field; nothing is stored."""
    before = await row_counts(env.database_url)
    status, body, _ = await env.api.request(method, path.format(**env.ids), json=payload)
    assert_refused(status, body, code="validation_error")
    assert field in body["error"]["details"].get("fields", {}), body
    assert await row_counts(env.database_url) == before


QUERIES: list[tuple[str, dict[str, str]]] = [
    ("/v1/messages", {"cursor": NUL}),
    ("/v1/messages", {"to": f"+998901234567{NUL}"}),
    ("/v1/messages", {"status": NUL}),
    ("/v1/messages/status", {"request_id": f"req_{NUL}"}),
    ("/v1/webhooks/deliveries", {"webhook_id": f"whk_{NUL}"}),
    ("/v1/webhooks/deliveries", {"request_id": f"req_{NUL}"}),
    ("/v1/webhooks/deliveries", {"cursor": f"dlv_{NUL}"}),
    ("/v1/webhooks", {"cursor": NUL}),
    ("/v1/tokens", {"cursor": NUL}),
    ("/v1/devices", {"cursor": NUL}),
    ("/v1/devices", {f"x{NUL}": "1"}),
    ("/v1/messages", {"limit": "²"}),
    ("/v1/messages", {"limit": "٣"}),
    ("/v1/devices", {"limit": "1e3"}),
    ("/v1/messages", {"since": "0001-01-01T00:00:00+01:00"}),
    ("/v1/messages", {"since": "9999-12-31T23:59:59-01:00"}),
    ("/v1/messages", {"since": "2026-13-45T00:00:00Z"}),
    ("/v1/messages", {"since": "\u0661\u0669\u0667\u0660-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(("path", "params"), QUERIES)
async def test_bad_query_values_are_refused(env: Env, path: str, params: dict[str, str]) -> None:
    """Control characters, non-ASCII digits and out-of-range dates in a query: a 422, never a 500."""
    status, body, _ = await env.api.get(path, params=params)
    assert_refused(status, body, code="validation_error")
    assert "fields" in body["error"]["details"], body


PATHS = [
    ("DELETE", "/v1/tokens/tok_%00"),
    ("DELETE", "/v1/tokens/%00"),
    ("PATCH", "/v1/devices/dev_%00"),
    ("DELETE", "/v1/devices/%00"),
    ("GET", "/v1/webhooks/whk_%00"),
    ("POST", "/v1/webhooks/whk_%00/test"),
    ("GET", "/v1/webhooks/deliveries/dlv_%00"),
    ("POST", "/v1/webhooks/deliveries/dlv_%00/retry"),
    ("GET", "/v1/otp/otp_%00"),
    ("GET", "/v1/otp/%C0%80"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_control_characters_in_path_ids_are_refused(env: Env, method: str, path: str) -> None:
    """A path id with NUL (or an overlong UTF-8 NUL) is a 4xx in the one shape and changes nothing."""
    before = await row_counts(env.database_url)
    status, body, _ = await env.api.request(method, path, json={})
    assert_refused(status, body)
    assert await row_counts(env.database_url) == before


POST_ROUTES = [
    "/v1/sms/send",
    "/v1/otp/send",
    "/v1/otp/verify",
    "/v1/tokens",
    "/v1/webhooks",
    "/v1/devices/pairing-codes",
    "/v1/relay/app/pair",
]


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"to": "+998901234567", "message": "x", "metadata": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}",
        b'{"ttl_seconds": 1e999}',
        b'{"to": "+998901234567", "message": "x", "ttl_seconds": 1e999}',
        b'{"expires_in_seconds": -1e999, "to": "+998901234567", "purpose": "p"}',
        b'{"to": "+998901234567", "message": "x", "sim_slot": 18446744073709551617}',
        b"\xff\xfe{",
        b'{"to": "\\ud800", "message": "x"}',
    ],
    ids=[
        "nested",
        "nested-field",
        "nested-metadata",
        "huge-ttl",
        "huge-ttl-2",
        "neg-huge",
        "big-int",
        "bad-utf8",
        "lone-surrogate",
    ],
)
async def test_pathological_bodies_are_refused(env: Env, path: str, raw: bytes) -> None:
    """Deep nesting, numbers out of range, broken UTF-8 and lone surrogates: a 422, nothing stored."""
    before = await row_counts(env.database_url)
    status, body, _ = await env.api.post(path, data=raw, headers={"Content-Type": "application/json"})
    assert_refused(status, body, code="validation_error")
    assert await row_counts(env.database_url) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "123456\n"},
        {"code": "123456\r\n"},
        {"code": "\n123456"},
    ],
)
async def test_otp_code_with_a_newline_uses_no_attempt(api: ApiClient, payload: dict[str, str]) -> None:
    """A code with a newline is refused as invalid before the code is looked at: no attempt is used."""
    status, sent, _ = await api.post("/v1/otp/send", json={"to": "+998901234567", "purpose": "login"})
    assert status == 200, sent
    status, body, _ = await api.post("/v1/otp/verify", json={"otp_id": sent["otp_id"], **payload})
    assert_refused(status, body, code="validation_error")
    status, state, _ = await api.get(f"/v1/otp/{sent['otp_id']}")
    assert status == 200 and state["attempts_used"] == 0, state


@pytest.mark.parametrize("field", ["purpose", "app_name"])
@pytest.mark.parametrize("suffix", ["\n", "\r", "\t", "\u2028"])
async def test_otp_labels_end_with_no_line_break(env: Env, field: str, suffix: str) -> None:
    """``purpose`` and ``app_name`` are whole-string matches: no trailing newline or control character."""
    payload = {"to": "+998901234567", "purpose": "login", field: "Acme" + suffix}
    status, body, _ = await env.api.post("/v1/otp/send", json=payload)
    assert_refused(status, body, code="validation_error")
    assert field in body["error"]["details"]["fields"], body
