"""The OpenAPI 3.1 document, generated from the endpoint table and msgspec's JSON Schema.

Nothing here is written by hand per route: paths, parameters, bodies, answers per status,
error codes, scopes and the ``webhooks`` section all come from :data:`gateway.api.ENDPOINTS`,
the request/answer Structs and :mod:`gateway.events`. ``docs/openapi.json`` is this document,
regenerated with ``python -m gateway.api.openapi docs/openapi.json`` (a test fails when the
committed file differs from what the running gateway serves).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway import __version__
from gateway.api.routing import Endpoint
from gateway.errors import STATUS_BY_CODE, ErrorBody, ErrorEnvelope
from gateway.events import EVENT_STRUCTS, catalogue_markdown

__all__ = ["build_openapi", "main"]

_REF = "#/components/schemas/{name}"
_WHEN = datetime(2026, 3, 14, 12, 30, tzinfo=UTC)

_DESCRIPTION = """\
relaygate sends SMS and one-time codes through your own fleet of Android relay phones.

Authenticate with `Authorization: Bearer <access token>`; each operation names the scope it
needs (`x-required-scope`). Every failure has one shape, `{"ok": false, "error": {"code",
"message", "details"}}`; the codes an operation may answer are listed per status. Times are
RFC 3339 UTC with `Z`. See docs/api.md for the rules behind each field.
"""


def _examples() -> dict[type[Any], Any]:
    """An example instance of every request and answer type (encoded from the types, so an
    example can never disagree with its schema)."""
    from gateway.access.accounts import Account, TokenInfo
    from gateway.api import (
        account,
        devices,
        health,
        inbound,
        messages,
        otp,
        readiness,
        recipients,
        tokens,
        webhooks,
    )
    from gateway.readiness import Check

    acc = Account(
        id="acc_01HV4Z6Q7T8Y9ABCDEFGHJKMNP",
        name="Acme shop",
        relay_mode="auto",
        default_region="UZ",
        subscription_expires_at=None,
        status="active",
        created_at=_WHEN,
    )
    token = TokenInfo(
        id="tok_01HV4Z6Q7T8Y9ABCDEFGHJKMNQ",
        name="shop backend",
        hint="rgat_Ab3d…",
        scopes=["account.read", "messages.send"],
        created_at=_WHEN,
        last_used_at=_WHEN,
        revoked_at=None,
    )
    device = devices.DeviceView(
        id="dev_01HV4Z6Q7T8Y9ABCDEFGHJKMNR",
        name="Relay Device 1",
        model="Pixel 7",
        app_version="1.4.2",
        online=True,
        enabled=True,
        last_seen_at=_WHEN,
        battery=87,
        charging=True,
        signal=4,
        network="wifi",
        sims=[{"slot": 0, "carrier": "Beeline", "ready": True}],
        queue_length=0,
        in_flight=1,
        sent_last_hour=42,
        limits=devices.DeviceLimits(
            max_in_flight=10, per_minute=30, per_day=None, defaults=["max_in_flight", "per_minute", "per_day"]
        ),
        paired_at=_WHEN,
    )
    view = messages.MessageView(
        request_id="req_01HV4Z8K2M3N4P5Q6R7S8T9V0W",
        status="delivered",
        to="+998901234567",
        device_id=device.id,
        device_name=device.name,
        attempts=1,
        failure_reason=None,
        failure_reason_detail=None,
        late_report=None,
        kind="sms",
        priority="normal",
        encoding="GSM-7",
        segments=1,
        metadata={"order": 42},
        queued_at=_WHEN,
        dispatched_at=_WHEN,
        sent_at=_WHEN,
        delivered_at=_WHEN,
        failed_at=None,
        expires_at=_WHEN,
    )
    attempt = messages.MessageAttempt(
        attempt=1,
        device_id=device.id,
        device_name=device.name,
        dispatched_at=_WHEN,
        acked_at=_WHEN,
        outcome="delivered",
        reason=None,
        finished_at=_WHEN,
    )
    hook = webhooks.Webhook(
        id="whk_01HV4Z6Q7T8Y9ABCDEFGHJKMNS",
        url="https://shop.example.com/hooks/sms",
        events=["message.delivered", "message.failed"],
        description="order notices",
        enabled=True,
        disabled_reason=None,
        created_at=_WHEN,
        previous_secret_expires_at=None,
    )
    delivery = webhooks.Delivery(
        id="dlv_01HV4Z8K2M3N4P5Q6R7S8T9V0Z_01HV4Z6Q7T8Y9ABCDEFGHJKMNS",
        webhook_id=hook.id,
        event_id="evt_01HV4Z8K2M3N4P5Q6R7S8T9V0Z",
        event_type="message.delivered",
        request_id=view.request_id,
        status="succeeded",
        attempts=1,
        next_attempt_at=None,
        last_attempt_at=_WHEN,
        created_at=_WHEN,
    )
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    otp_id = "otp_01HV4Z8K2M3N4P5Q6R7S8T9V0X"
    return {
        messages.SendRequest: messages.SendRequest(
            to="+998901234567", message="Your order #42 shipped", metadata={"order": 42}
        ),
        messages.Accepted: messages.Accepted(request_id=view.request_id, queued_at=_WHEN),
        messages.MessageStatus: messages.MessageStatus(**msgspec.structs.asdict(view), history=[attempt]),
        messages.MessageList: messages.MessageList(messages=[view], next_cursor=None),
        otp.OtpSendRequest: otp.OtpSendRequest(to="+998901234567", purpose="login", locale="uz"),
        otp.OtpSendAnswer: otp.OtpSendAnswer(
            otp_id=otp_id,
            expires_in_seconds=300,
            request_id="req_01HV4Z8K2M3N4P5Q6R7S8T9V0Y",
            expires_at=_WHEN,
            locale="uz",
            encoding="GSM-7",
            segments=1,
        ),
        otp.OtpVerifyRequest: otp.OtpVerifyRequest(otp_id=otp_id, code="482913"),
        otp.OtpVerifyAnswer: otp.OtpVerifyAnswer(ok=True, otp_id=otp_id, status="success", attempts_left=5),
        otp.OtpStatus: otp.OtpStatus(
            otp_id=otp_id,
            status="verified",
            to="+998901234567",
            purpose="login",
            locale="uz",
            code_length=6,
            attempts_used=0,
            attempts_left=5,
            max_attempts=5,
            created_at=_WHEN,
            expires_at=_WHEN,
            verified_at=_WHEN,
            sms=otp.OtpSms(
                request_id="req_01HV4Z8K2M3N4P5Q6R7S8T9V0Y",
                status="delivered",
                failure_reason=None,
                device_id=device.id,
                sent_at=_WHEN,
                delivered_at=_WHEN,
            ),
        ),
        readiness.Readiness: readiness.Readiness(
            ready=True,
            checks=[
                Check(
                    id="token", status="pass", message="this token can send SMS and OTP and read their status"
                ),
                Check(id="subscription", status="warn", message="active, ends in 5.2 days"),
                Check(id="relays_online", status="pass", message="2 relays online with a ready SIM"),
                Check(id="webhook", status="pass", message="the last test event was delivered"),
                Check(id="limits", status="pass", message="120 messages in 24 h; relays allow 86400/day"),
                Check(id="queue", status="pass", message="0 messages waiting"),
            ],
        ),
        account.AccountUpdate: account.AccountUpdate(
            name="Acme shop", relay_mode="auto", default_region="UZ"
        ),
        account.AccountResponse: account.AccountResponse(
            account=acc, subscription_active=True, token_id=token.id, scopes=token.scopes
        ),
        tokens.TokenCreate: tokens.TokenCreate(scopes=["account.read", "messages.send"], name="shop backend"),
        tokens.TokenCreated: tokens.TokenCreated(token="rgat_" + "x" * 36, token_info=token),
        tokens.TokenList: tokens.TokenList(tokens=[token], next_cursor=None),
        tokens.TokenRevoked: tokens.TokenRevoked(token_info=token),
        devices.PairingCodeRequest: devices.PairingCodeRequest(expires_in_seconds=600),
        devices.PairingCodeCreated: devices.PairingCodeCreated(
            code="ABCD-EFGH",
            qr_payload="relaygate://pair?v=1&code=ABCD-EFGH&url=https%3A%2F%2Fsms.example.com%2Fapi",
            expires_at=_WHEN,
        ),
        devices.PairRequest: devices.PairRequest(
            code="ABCD-EFGH", name="Shop phone", model="Pixel 7", app_version="1.4.2"
        ),
        devices.Paired: devices.Paired(
            device_id=device.id,
            device_token="rgd_" + "x" * 36,
            ws_url="wss://sms.example.com/relay/v1",
            heartbeat_interval_seconds=30,
        ),
        devices.DeviceList: devices.DeviceList(devices=[device], next_cursor=None),
        devices.DeviceUpdate: devices.DeviceUpdate(name="Till 2", per_minute_limit=20),
        devices.DeviceResponse: devices.DeviceResponse(device=device),
        devices.DeviceDeleted: devices.DeviceDeleted(device_id=device.id),
        webhooks.WebhookCreate: webhooks.WebhookCreate(
            url=hook.url, events=["message.delivered", "message.failed"]
        ),
        webhooks.WebhookUpdate: webhooks.WebhookUpdate(events=["message.sent", "message.delivered"]),
        webhooks.WebhookCreated: webhooks.WebhookCreated(webhook=hook, secret=secret),
        webhooks.WebhookResponse: webhooks.WebhookResponse(webhook=hook),
        webhooks.WebhookList: webhooks.WebhookList(webhooks=[hook], next_cursor=None),
        webhooks.SecretRotated: webhooks.SecretRotated(webhook=hook, secret=secret),
        webhooks.WebhookDeleted: webhooks.WebhookDeleted(webhook_id=hook.id),
        webhooks.TestQueued: webhooks.TestQueued(delivery_id=delivery.id, event_id=delivery.event_id),
        webhooks.DeliveryList: webhooks.DeliveryList(deliveries=[delivery], next_cursor=None),
        webhooks.DeliveryResponse: webhooks.DeliveryResponse(delivery=delivery),
        webhooks.DeliveryDetail: webhooks.DeliveryDetail(
            delivery=delivery,
            payload={"type": "message.delivered", "data": {"request_id": view.request_id}},
            attempts_log=[
                webhooks.DeliveryAttempt(
                    attempt=1,
                    trigger="scheduled",
                    started_at=_WHEN,
                    duration_ms=42,
                    http_status=200,
                    error=None,
                    response_excerpt="ok",
                    outcome="succeeded",
                    next_attempt_at=None,
                )
            ],
        ),
        health.Health: health.Health(
            ok=True, status="ok", version=__version__, database="ok", uptime_seconds=12.3
        ),
        ErrorEnvelope: ErrorEnvelope(
            error=ErrorBody(
                code="validation_error",
                message="request body is invalid",
                details={"fields": {"to": "not a valid phone number"}},
            )
        ),
        **recipients.examples(_WHEN),
        **inbound.examples(_WHEN),
    }


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is a string on the wire: drop the ``null`` branch of optional ones."""
    branches = schema.get("anyOf")
    if branches:
        rest = [b for b in branches if b.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(rest[0])
            if merged.get("default", ...) is None:
                del merged["default"]
            return merged
    return schema


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": _REF.format(name=kind.__name__)}


def _operation(e: Endpoint, components: dict[str, Any], examples: dict[type[Any], Any]) -> dict[str, Any]:
    name = getattr(e.handler, "__name__", "op")
    op: dict[str, Any] = {
        "operationId": f"{e.tag}.{name}",
        "summary": e.summary,
        "tags": [e.tag],
        "security": [{"bearerAuth": []}] if e.scope else [],
    }
    doc = (getattr(e.handler, "__doc__", None) or "").strip()
    if doc:
        op["description"] = doc
    if e.scope:
        op["x-required-scope"] = e.scope
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 80}}
        for p in e.path_params
    ]
    if e.query is not None:
        props = components[e.query.__name__]["properties"]
        required = set(components[e.query.__name__].get("required", []))
        for field in msgspec.structs.fields(e.query):
            parameters.append(
                {
                    "name": field.encode_name,
                    "in": "query",
                    "required": field.encode_name in required,
                    "schema": _query_schema(props[field.encode_name]),
                }
            )
    if e.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes retries safe: the same key and body replay the first answer.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if parameters:
        op["parameters"] = parameters
    if e.body is not None:
        media: dict[str, Any] = {"schema": _ref(e.body)}
        if e.body in examples:
            media["example"] = msgspec.to_builtins(examples[e.body])
        op["requestBody"] = {"required": not e.body_optional, "content": {"application/json": media}}
    responses: dict[str, Any] = {}
    for status, kind in e.responses.items():
        media = {"schema": _ref(kind)}
        if kind in examples:
            media["example"] = msgspec.to_builtins(examples[kind])
        responses[str(status)] = {
            "description": (kind.__doc__ or kind.__name__).strip().splitlines()[0],
            "content": {"application/json": media},
        }
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in e.error_codes:
        by_status[STATUS_BY_CODE[code]].append(code)
    for status, codes in sorted(by_status.items()):
        if str(status) in responses:
            continue
        responses[str(status)] = {
            "description": "Error: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": _ref(ErrorEnvelope)}},
        }
    op["responses"] = responses
    return op


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The whole document for ``endpoints``."""
    kinds: set[type[Any]] = {ErrorEnvelope, *EVENT_STRUCTS}
    for e in endpoints:
        kinds.update(e.responses.values())
        kinds.update(k for k in (e.body, e.query) if k is not None)
    ordered = sorted(kinds, key=lambda k: k.__name__)
    _, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    examples = _examples()
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in endpoints:
        paths[e.path.removeprefix("/api")][e.method.lower()] = _operation(e, components, examples)
    for e in endpoints:  # query Structs become parameters, not schemas
        if e.query is not None:
            components.pop(e.query.__name__, None)
    webhooks = {
        str(s.__struct_config__.tag): {
            "post": {
                "summary": (s.__doc__ or "").strip(),
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(s)}}},
                "responses": {
                    "200": {"description": "Any 2xx acknowledges the event; anything else is retried."}
                },
            }
        }
        for s in EVENT_STRUCTS
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relaygate API",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/api", "description": "this gateway (set RELAYGATE_PUBLIC_URL behind a proxy)"}],
        "tags": [{"name": t} for t in dict.fromkeys(e.tag for e in endpoints)],
        "paths": dict(paths),
        "webhooks": webhooks,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An access token, rgat_…"}
            },
        },
    }


def render(document: dict[str, Any]) -> bytes:
    """The committed form: indented, keys in a stable order, a final newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


EVENTS_BEGIN = "<!-- events:begin"
EVENTS_END = "<!-- events:end -->"


def with_event_catalogue(markdown: str) -> str:
    """``markdown`` (docs/api.md) with its generated events table replaced by the current one."""
    start = markdown.index(EVENTS_BEGIN)
    body = markdown.index("\n", start) + 1
    end = markdown.index(EVENTS_END, body)
    return markdown[:body] + catalogue_markdown() + markdown[end:]


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.api.openapi [OPENAPI_FILE [API_MD]]``: write the document (to stdout
    without a file) and refresh the generated events table of docs/api.md when it is given."""
    from gateway.api import ENDPOINTS

    args = sys.argv[1:] if argv is None else argv
    data = render(build_openapi(ENDPOINTS))
    if args:
        with open(args[0], "wb") as out:
            out.write(data)
    else:
        sys.stdout.buffer.write(data)
    if len(args) > 1:
        with open(args[1], encoding="utf-8") as f:
            text = f.read()
        with open(args[1], "w", encoding="utf-8") as f:
            f.write(with_event_catalogue(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
