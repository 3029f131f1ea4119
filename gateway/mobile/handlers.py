"""The SMSGate app's server API under ``/api/mobile/v1`` (docs/phones.md).

Every route but ``POST /device`` and ``POST /inbound/{device_id}`` needs the phone's own
``Authorization: Bearer rgm_…``; registration spends a relaygate pairing code sent as
``Authorization: Code <code>``; ``/inbound`` is verified by the webhook signature. Errors have
the API's one JSON shape; the app only reads the status (401 makes it register again).
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.tokens import hash_token
from gateway.api.devices import pairing_rate_limit
from gateway.api.front_door import UNSAFE_CHARACTERS
from gateway.bodies import decode_json, nul_field, read_body
from gateway.errors import ApiError, error_body
from gateway.fleet.devices import DeviceRecord, LiveTelemetry, device_from_row
from gateway.fleet.inbound import InboundSms
from gateway.fleet.pairing import PairingFailed, normalise_code, pair_device, register_device
from gateway.logs import get_logger
from gateway.mobile.auth import PHONE_PREFIX, authorization, phone_device, signature_ok, signing_key
from gateway.mobile.link import PhoneDesk
from gateway.mobile.shapes import (
    DeviceSummary,
    GatewaySection,
    MessagesSection,
    MobileDevice,
    MobileSettings,
    PingSection,
    ReceivedSms,
    Registered,
    Registration,
    RegistrationUpdate,
    SimCard,
    StateReport,
    StateReports,
    WebhookDelivery,
    WebhooksSection,
    WebhookTarget,
)
from gateway.mobile.states import outcome, parse_app_time
from gateway.mobile.stream import EventStreamResponse
from gateway.mobile.telemetry import apply_ping
from gateway.services import Services
from protocol import Report
from store.batcher import ItemRejected
from store.devices import device_for_account

__all__ = [
    "WEBHOOK_EVENTS",
    "get_device",
    "get_messages",
    "get_settings",
    "get_webhooks",
    "inbound",
    "not_offered",
    "open_events",
    "register",
    "report_states",
    "update_device",
]

log = get_logger("gateway.mobile")

WEBHOOK_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping")
"""The webhooks every phone is told to post to its ``/inbound`` URL."""
MAX_WEBHOOK_BYTES = 64 * 1024
_ENCODER = msgspec.json.Encoder()


def _svc(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _desk(request: Request) -> PhoneDesk:
    desk: PhoneDesk = request.app.state.phones
    return desk


def _json(value: Any, status: int = 200) -> Response:
    return Response(_ENCODER.encode(value), status_code=status, media_type="application/json")


def _clean(text: str | None, limit: int = 64) -> str:
    return UNSAFE_CHARACTERS.sub("", text or "").strip()[:limit]


def _app_version(request: Request) -> str:
    """``1.68.0`` from ``User-Agent: me.capcom.smsgateway/1.68.0``."""
    agent = request.headers.get("user-agent", "")
    name, _, version = agent.partition("/")
    return _clean(version.split(" ")[0], 32) if name.strip() == "me.capcom.smsgateway" else ""


def _sims(cards: list[SimCard] | None) -> list[dict[str, Any]]:
    """The app's SIM list as ours (slot = simNumber - 1); no list: one slot 0 ready."""
    if not cards:
        return [{"slot": 0, "carrier": None, "ready": True}]
    seen: dict[int, dict[str, Any]] = {}
    for card in cards:
        if card.simNumber <= 4:
            carrier = _clean(card.carrierName) or None
            seen[card.simNumber - 1] = {"slot": card.simNumber - 1, "carrier": carrier, "ready": True}
    return sorted(seen.values(), key=lambda s: s["slot"]) or [{"slot": 0, "carrier": None, "ready": True}]


async def _body(request: Request, shape: type[Any], limit: int | None = None) -> Any:
    svc = _svc(request)
    return decode_json(await read_body(request, limit or svc.settings.max_body_bytes), shape)


# --- registration ----------------------------------------------------------------------------


async def register(request: Request) -> Response:
    """``POST /device``: spend a pairing code (``Authorization: Code <code>``) on a new phone."""
    svc = _svc(request)
    pairing_rate_limit(request, svc)
    auth = authorization(request)
    secret_account = _secret_account(svc, auth[1]) if auth is not None and auth[0] == "bearer" else None
    if secret_account is None and (auth is None or auth[0] != "code"):
        scheme = auth[0] if auth else "none"
        raise ApiError(
            "unauthorized",
            "register with a relaygate pairing code: Authorization: Code ABCD-EFGH (the app's "
            "'Sign in by code'), or the operator's registration secret as the private token",
            {"scheme": scheme[:16]},
        )
    spec: Registration = await _body(request, Registration)
    name = _clean(spec.name) or "SMSGate phone"
    details = {
        "name": name,
        "model": name,
        "app_version": _app_version(request),
        "token_prefix": PHONE_PREFIX,
    }
    if secret_account is not None:
        registered = await register_device(svc.pool, secret_account, **details)
        if registered is None:
            log.error("mobile.registration_secret_account_unknown", account_id=secret_account)
            raise ApiError("unauthorized", "the registration secret's account does not exist")
        paired = registered
    else:
        assert auth is not None
        code = normalise_code(auth[1][:32])
        if code is None:
            raise ApiError("unauthorized", "not a relaygate pairing code")
        try:
            paired = await pair_device(svc.pool, code, **details)
        except PairingFailed:
            raise ApiError("unauthorized", "pairing code unknown, expired, already used or locked") from None
    row = await device_for_account(svc.pool, device_id=paired.device_id, account_id=paired.account_id)
    assert row is not None  # paired just now
    device = device_from_row(row)
    telemetry = LiveTelemetry(sims=_sims(spec.simCards), app_version=_app_version(request) or None)
    svc.device_changed(device)
    svc.hub.remember_device(hash_token(paired.device_token), device, telemetry)
    log.info("mobile.registered", device_id=device.id, account_id=device.account_id)
    return _json(Registered(id=device.id, token=paired.device_token, login=device.id), 201)


def _secret_account(svc: Services, offered: str) -> str | None:
    """The account whose registration secret ``offered`` is (constant-time compares), else None."""
    found = None
    for pair in svc.settings.mobile_registration_secrets:
        account, _, secret = pair.partition("=")
        if hmac.compare_digest(secret.encode(), offered.encode()):
            found = account
    return found


async def update_device(request: Request) -> Response:
    """``PATCH /device``: the app's start-up check-in with its SIM list (204; 401 → register)."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    spec: RegistrationUpdate = await _body(request, RegistrationUpdate)
    if spec.id != device.id:
        raise ApiError("forbidden", "the id is not this token's device", {"id": "must be " + device.id})
    if spec.simCards is not None:
        telemetry.sims = _sims(spec.simCards)
    telemetry.app_version = _app_version(request) or telemetry.app_version
    _seen(request, device, telemetry)
    return Response(status_code=204)


def _seen(request: Request, device: DeviceRecord, telemetry: LiveTelemetry) -> None:
    """Any authenticated call: last seen now, telemetry flushed with the next batch."""
    telemetry.last_seen_at = _svc(request).clock.now()
    link = _desk(request).link(device.id)
    if link is not None:
        _svc(request).hub.heartbeat(link)


async def get_device(request: Request) -> Response:
    """``GET /device``: the address the gateway sees (the app shows it)."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    _seen(request, device, telemetry)
    client = request.client.host if request.client else ""
    return _json(MobileDevice(externalIp=client, device=DeviceSummary(id=device.id, name=device.name)))


# --- messages --------------------------------------------------------------------------------


async def get_messages(request: Request) -> Response:
    """``GET /message``: what this phone should send now (acked before it is answered)."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    _seen(request, device, telemetry)
    order = request.query_params.get("order", "fifo")
    if order not in ("fifo", "lifo"):
        raise ApiError("validation_error", "order is fifo or lifo", {"fields": {"order": "fifo or lifo"}})
    messages = [m.wire() for m in await _desk(request).pull(device.id)]
    if order == "lifo":
        messages.reverse()
    return _json(messages)


async def report_states(request: Request) -> Response:
    """``PATCH /message``: full state snapshots, merged monotonically; unknown ids ignored."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    items = _reports(await read_body(request, svc.settings.max_body_bytes))
    _seen(request, device, telemetry)
    desk = _desk(request)
    for item in items:
        try:
            await _apply(svc, desk, device.id, item)
        except ItemRejected as exc:
            log.warning("mobile.report_refused", device_id=device.id, message_id=item.id, error=repr(exc))
    return Response(status_code=204)


def _reports(data: bytes) -> list[StateReport]:
    """A ``PATCH /message`` body (a JSON array), held to the rules of every body."""
    try:
        items: list[StateReport] = msgspec.json.decode(data, type=StateReports)
    except msgspec.ValidationError as exc:
        raise ApiError("validation_error", "invalid state reports", {"body": str(exc)[:200]}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(
            "validation_error", "request body is not valid JSON", {"body": str(exc)[:200]}
        ) from None
    except RecursionError:
        raise ApiError("validation_error", "request body is nested too deeply") from None
    if b"\\u0000" in data and nul_field(msgspec.json.decode(data)) is not None:
        raise ApiError("validation_error", "invalid state reports", {"body": "must not contain U+0000"})
    return items


async def _apply(svc: Services, desk: PhoneDesk, device_id: str, item: StateReport) -> None:
    found = outcome(item)
    desk.taken_of(device_id).pop(item.id, None)  # the phone has it: no need to offer it again
    pipeline, now = svc.pipeline, svc.clock.now()
    if found.acked:
        pipeline.relay_acked(device_id, item.id)
    if found.sent:
        await pipeline.relay_reported(device_id, Report(id=item.id, status="sent", at=found.sent_at or now))
    if found.delivered:
        at = found.delivered_at or now
        await pipeline.relay_reported(device_id, Report(id=item.id, status="delivered", at=at))
    if found.failed:
        report = Report(id=item.id, status="failed", reason=found.reason, at=found.failed_at or now)
        await pipeline.relay_reported(device_id, report, detail=found.detail)
    if found.cancelled:
        await desk.cancelled(device_id, item.id)


# --- events, settings, webhooks --------------------------------------------------------------


async def open_events(request: Request) -> Response:
    """``GET /events``: the phone's Server-Sent Events stream; the phone is online while open."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    desk = _desk(request)
    link, stream = await desk.open_stream(device, telemetry)
    return EventStreamResponse(stream, svc.settings.mobile_keepalive, lambda: desk.close_stream(link, stream))


async def get_settings(request: Request) -> Response:
    """``GET /settings``: SSE only, this phone's sending limit, the webhook key, the ping."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    _seen(request, device, telemetry)
    return _json(
        MobileSettings(
            gateway=GatewaySection(),
            messages=MessagesSection(limit_value=device.effective_per_minute),
            ping=PingSection(interval_seconds=svc.settings.mobile_ping_interval),
            webhooks=WebhooksSection(signing_key=signing_key(svc.secret, device.id)),
        )
    )


def inbound_url(request: Request, svc: Services, device_id: str) -> str:
    """Where this phone posts its webhooks (``RELAYGATE_PUBLIC_URL`` when set)."""
    if svc.settings.public_url:
        return f"{svc.settings.public_url.rstrip('/')}/mobile/v1/inbound/{device_id}"
    return f"{str(request.base_url).rstrip('/')}/api/mobile/v1/inbound/{device_id}"


async def get_webhooks(request: Request) -> Response:
    """``GET /webhooks``: every event the gateway wants, pointed at the phone's inbound URL."""
    svc = _svc(request)
    device, telemetry = await phone_device(request, svc)
    _seen(request, device, telemetry)
    url = inbound_url(request, svc, device.id)
    return _json(
        [WebhookTarget(id=f"relaygate-{e.replace(':', '-')}", url=url, event=e) for e in WEBHOOK_EVENTS]
    )


async def inbound(request: Request) -> Response:
    """``POST /inbound/{device_id}``: a webhook of the phone, signed with its key."""
    svc = _svc(request)
    device_id = request.path_params["device_id"][:64]
    device = svc.hub.device(device_id)
    body = await read_body(request, MAX_WEBHOOK_BYTES)
    if device is None or not signature_ok(
        signing_key(svc.secret, device_id),
        body,
        request.headers.get("x-timestamp"),
        request.headers.get("x-signature"),
        now=svc.clock.time(),
    ):
        raise ApiError("unauthorized", "bad or missing webhook signature (X-Signature, X-Timestamp)")
    delivery = decode_json(body, WebhookDelivery)
    desk = _desk(request)
    if delivery.event == "system:ping":
        link = desk.link(device_id)
        if link is not None:  # an offline phone's telemetry comes with its next stream
            apply_ping(link.telemetry, delivery.payload, svc.clock.now())
            svc.hub.heartbeat(link)
    elif delivery.event == "sms:received":
        await _received(svc, device, delivery)
    return Response(status_code=204)


async def _received(svc: Services, device: DeviceRecord, delivery: WebhookDelivery) -> None:
    """Store an ``sms:received`` like a v1.1 ``inbound`` frame (the same desk)."""
    try:
        sms = msgspec.convert(delivery.payload, ReceivedSms)
    except msgspec.ValidationError as exc:
        raise ApiError(
            "validation_error", "invalid sms:received payload", {"payload": str(exc)[:200]}
        ) from None
    sender = sms.sender or sms.phoneNumber
    if not sender:
        raise ApiError("validation_error", "sms:received without a sender", {"payload": "sender is required"})
    received_at = parse_app_time(sms.receivedAt) or svc.clock.now()
    assert svc.inbound is not None
    await svc.inbound.store(
        InboundSms(
            account_id=device.account_id,
            device_id=device.id,
            # the app's id is a content hash: with the time, a retry matches and a repeat does not
            relay_id=f"{sms.messageId}@{sms.receivedAt or ''}",
            sender=sender,
            text=sms.message,
            received_at=received_at,
            sim_slot=sms.simNumber - 1 if sms.simNumber is not None and sms.simNumber <= 4 else None,
        )
    )


async def not_offered(request: Request) -> Response:
    """Routes of the SMSGate server API relaygate does not offer (user accounts, inbox export): 501."""
    error = ApiError(
        "not_implemented",
        f"{request.method} {request.url.path[:200]} is not offered by relaygate (see docs/phones.md)",
    )
    return Response(error_body(error), status_code=501, media_type="application/json")
