"""The OpenAPI document: generated from the endpoint table, served, committed in sync, valid,
conformed to by the running gateway (a bounded schemathesis run), with every webhook event
declared and every real delivery matching its declared type."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api import ENDPOINTS
from gateway.api.openapi import build_openapi, render, with_event_catalogue
from gateway.events import WebhookEvent, event_types
from gateway.webhooks.signing import EVENT_TYPES
from tests.harness import ApiClient, RunningGateway, ThreadedGateway
from tests.relay_client import RawRelay, pair_relay
from tests.webhook_receiver import Receiver

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


async def test_served_document_is_the_committed_file(api: ApiClient) -> None:
    """``GET /api/openapi.json`` is byte for byte docs/openapi.json (regenerate with
    ``python -m gateway.api.openapi docs/openapi.json``)."""
    async with api.session.get(api.base_url + "/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        served = await resp.read()
    assert served == COMMITTED.read_bytes(), (
        "docs/openapi.json is stale: python -m gateway.api.openapi docs/openapi.json"
    )
    assert served == render(build_openapi(ENDPOINTS))


def test_api_md_event_table_is_generated_from_the_types() -> None:
    """docs/api.md's events table is the one gateway/events.py makes (regenerate with
    ``python -m gateway.api.openapi docs/openapi.json docs/api.md``)."""
    api_md = (COMMITTED.parent / "api.md").read_text(encoding="utf-8")
    assert with_event_catalogue(api_md) == api_md, (
        "stale: python -m gateway.api.openapi docs/openapi.json docs/api.md"
    )


def test_document_is_valid_openapi_31() -> None:
    """openapi-spec-validator accepts the document."""
    document = json.loads(COMMITTED.read_bytes())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_and_event_is_declared() -> None:
    """Every endpoint of the table has its operation with scope and error statuses; every webhook
    event type the gateway can send is in the ``webhooks`` section, from one list, next to the
    envelope of batched delivery."""
    document = build_openapi(ENDPOINTS)
    for e in ENDPOINTS:
        op = document["paths"][e.path.removeprefix("/api")][e.method.lower()]
        assert op.get("x-required-scope") == e.scope
        assert str(e.status) in op["responses"]
        if e.scope is not None:
            assert {"401", "403", "429"} <= set(op["responses"])
    assert sorted(set(document["webhooks"]) - {"batch"}) == sorted(event_types()) == sorted(EVENT_TYPES)
    assert document["webhooks"]["batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]


async def test_reference_page_fetches_nothing_elsewhere(api: ApiClient) -> None:
    """``/api/docs`` is one self-contained page: no script, style or font from another site."""
    async with api.session.get(api.base_url + "/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "openapi.json" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load other sites"


@pytest.mark.slow
def test_schemathesis_finds_no_failure(threaded: ThreadedGateway) -> None:
    """A bounded schemathesis run over every operation: no 5xx, every status documented, every
    answer conforming to its declared schema and content type."""
    status, raw = threaded.request("GET", "/api/openapi.json", b"", {})
    assert status == 200
    schema = schemathesis.openapi.from_dict(json.loads(raw))
    base_url = f"http://127.0.0.1:{threaded.running.gateway.http_port}/api"
    headers = {"Authorization": f"Bearer {threaded.token}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == len(ENDPOINTS)
    calls: list[int] = []
    for operation in operations:

        @settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)
            calls.append(response.status_code)

        run()
    assert len(calls) >= 3 * len(operations), len(calls)
    assert any(200 <= c < 300 for c in calls) and any(400 <= c < 500 for c in calls)


async def test_real_deliveries_match_their_declared_event_types(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """Events a real flow produces decode as the declared types, unknown fields refused."""
    receiver = Receiver()
    await receiver.start()
    try:
        events = ["message.sent", "message.delivered", "device.online", "device.offline", "webhook.test"]
        status, hook, _ = await api.post("/v1/webhooks", json={"url": receiver.url(), "events": events})
        assert status == 201
        paired = await pair_relay(api)
        relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
        status, _, _ = await api.post("/v1/sms/send", json={"to": "+998901234567", "message": "hi"})
        assert status == 200
        frame = await relay.recv()
        await relay.send({"type": "ack", "id": frame["id"]})
        for report in ("sent", "delivered"):
            await relay.send(
                {"type": "report", "id": frame["id"], "status": report, "at": "2026-11-23T10:00:00Z"}
            )
            assert (await relay.recv())["type"] == "report_ack"
        await relay.close()
        assert (await api.post(f"/v1/webhooks/{hook['webhook']['id']}/test"))[0] == 202
        received = await receiver.wait_for("/hook", 5, timeout=15)
        decoded = [msgspec.json.decode(r.body, type=WebhookEvent) for r in received]
        kinds = {type(e).__struct_config__.tag for e in decoded}
        assert kinds == set(events), kinds
    finally:
        await receiver.stop()


def test_every_body_and_answer_has_an_example_that_fits_its_schema() -> None:
    """Each request body and success answer carries an example, and each example validates
    against its own schema (they are encoded from instances of the same Structs)."""
    import jsonschema

    document = build_openapi(ENDPOINTS)
    components = document["components"]["schemas"]
    checked = 0
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            media = [op["requestBody"]["content"]["application/json"]] if "requestBody" in op else []
            media += [
                r["content"]["application/json"] for s, r in op["responses"].items() if s.startswith("2")
            ]
            for m in media:
                assert "example" in m, (method, path)
                name = m["schema"]["$ref"].rsplit("/", 1)[1]
                schema = {**components[name], "components": {"schemas": components}}
                jsonschema.Draft202012Validator(schema).validate(m["example"])
                checked += 1
    assert checked >= len(ENDPOINTS)
