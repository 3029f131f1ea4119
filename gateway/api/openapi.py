"""The OpenAPI 3.1 document, generated from the endpoint table and msgspec's JSON Schema.

Nothing here is written by hand per route: paths, parameters, bodies, answers per status,
error codes, scopes and the ``webhooks`` section all come from :data:`gateway.api.ENDPOINTS`,
the request/answer Structs and :mod:`gateway.events`. ``docs/openapi.json`` is this document,
regenerated with ``python -m gateway.api.openapi docs/openapi.json docs/api.md`` (a test fails
when the committed file differs from what the running gateway serves).

This module assembles the document and holds the example of every type; the operation objects
and schemas come from :mod:`gateway.api.openapi_schema`, the committed files' form and the
events table of docs/api.md from :mod:`gateway.api.docfiles`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway import __version__
from gateway.api.docfiles import render, with_event_catalogue
from gateway.api.openapi_schema import components, event_webhooks, operation
from gateway.api.routing import Endpoint
from gateway.errors import ErrorBody, ErrorEnvelope

__all__ = ["build_openapi", "main", "render", "with_event_catalogue"]

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
        batches,
        devices,
        health,
        inbound,
        messages,
        otp,
        queue,
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
        sims=[
            devices.SimView(slot=0, carrier="Beeline", ready=True, per_day=500, sent_last_day=42),
            devices.SimView(slot=1, carrier="Ucell", ready=True, per_day=None, sent_last_day=0),
        ],
        sim_policy="default",
        queue_length=0,
        in_flight=1,
        sent_last_hour=42,
        limits=devices.DeviceLimits(
            max_in_flight=10,
            per_minute=30,
            per_day=None,
            defaults=["max_in_flight", "per_minute", "per_day"],
            sim_per_day={"0": 500},
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
        batch=None,
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
        messages.Accepted: messages.Accepted(
            ok=True, request_id=view.request_id, status="queued", queued_at=_WHEN
        ),
        messages.CancelAnswer: messages.CancelAnswer(request_id=view.request_id, status="cancelled"),
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
        devices.DeviceUpdate: devices.DeviceUpdate(
            name="Till 2", per_minute_limit=20, sim_policy="least_used"
        ),
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
        **queue.examples(),
        **batches.examples(_WHEN),
        **inbound.examples(_WHEN),
    }


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The whole document for ``endpoints``."""
    named = components(endpoints)
    examples = _examples()
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in endpoints:
        paths[e.path.removeprefix("/api")][e.method.lower()] = operation(e, named, examples)
    for e in endpoints:  # query Structs become parameters, not schemas
        if e.query is not None:
            named.pop(e.query.__name__, None)
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
        "webhooks": event_webhooks(),
        "components": {
            "schemas": dict(sorted(named.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An access token, rgat_…"}
            },
        },
    }


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
