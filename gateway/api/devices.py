"""Relay devices: pairing codes, the app's pairing call, and the devices list/update/unpair.

``POST /v1/relay/app/pair`` is the one route without an access token: the phone proves itself
with the pairing code. It is rate limited per client address, and every failure (unknown,
expired, used or dead code) gets the same ``not_found`` answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.requests import Request

from gateway.api.common import PageQuery, page
from gateway.api.fields import Label32, Label64
from gateway.api.routing import Call
from gateway.errors import ApiError
from gateway.fleet.devices import DeviceRecord, device_from_row, telemetry_from_row
from gateway.fleet.pairing import (
    MAX_FAILED_TRIES,
    PairingFailed,
    create_pairing_code,
    normalise_code,
    pair_device,
    parse_qr_payload,
    qr_payload,
)
from gateway.ids import has_prefix
from gateway.limits import MAX_PENDING_PAIRING_CODES
from gateway.services import Services
from protocol import CloseCode
from store.devices import (
    DeviceRow,
    device_for_account,
    device_page,
    live_pairing_codes,
    unpair_device,
)
from store.devices import update_device as store_update_device

_T = TypeVar("_T")

SimPolicy = Literal["default", "round_robin", "least_used"]
"""``scheduler.SIM_POLICIES``: see docs/api.md "SIMs"."""

__all__ = [
    "DeviceDeleted",
    "DeviceList",
    "DeviceResponse",
    "DeviceUpdate",
    "PairRequest",
    "Paired",
    "PairingCodeCreated",
    "PairingCodeRequest",
    "SimView",
    "create_pairing",
    "delete_device",
    "list_devices",
    "pair",
    "pairing_rate_limit",
    "update_device",
]


class PairingCodeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/devices/pairing-codes`` (optional)."""

    expires_in_seconds: Annotated[int, msgspec.Meta(ge=60, le=3600)] = 600


class PairingCodeCreated(msgspec.Struct, kw_only=True):
    """A single-use code and the QR payload carrying it."""

    ok: bool = True
    code: str
    qr_payload: str
    expires_at: datetime


class PairRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/relay/app/pair``: a code or a QR payload, and what the phone is."""

    name: Label64
    model: Label64
    app_version: Label32
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    qr_payload: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None


class Paired(msgspec.Struct, kw_only=True):
    """The device's own credential (shown once) and where to connect."""

    ok: bool = True
    device_id: str
    device_token: str
    ws_url: str
    heartbeat_interval_seconds: int


class DeviceLimits(msgspec.Struct, kw_only=True):
    """The sending limits in force (what routing uses and ``welcome`` announces)."""

    max_in_flight: int
    per_minute: int
    per_day: int | None
    """Null: no daily cap."""
    defaults: list[str]
    """Names of the limits above that are the defaults (not set for this relay)."""
    sim_per_day: dict[str, int] = msgspec.field(default_factory=dict)
    """Daily limit per SIM slot (``{"0": 200}``); slots not listed have none."""


class SimView(msgspec.Struct, kw_only=True):
    """One SIM as the relay last reported it, with its sending in the last 24 h."""

    slot: int
    carrier: str | None
    ready: bool
    per_day: int | None
    """This SIM's daily limit; null: none."""
    sent_last_day: int
    """Messages handed to the relay for this SIM in the last 24 h (this gateway process; only
    those sent on a known slot: named by the request or chosen by the SIM policy)."""


class DeviceView(msgspec.Struct, kw_only=True):
    """A relay as the API shows it: stored settings plus the live view."""

    id: str
    name: str
    model: str
    app_version: str
    online: bool
    enabled: bool
    last_seen_at: datetime | None
    battery: int | None
    charging: bool | None
    signal: int | None
    network: str | None
    sims: list[SimView]
    sim_policy: SimPolicy
    """How the SIM of a message that names none is chosen."""
    queue_length: int | None
    in_flight: int
    sent_last_hour: int
    limits: DeviceLimits
    paired_at: datetime


class DeviceList(msgspec.Struct, kw_only=True):
    """A page of the account's relays."""

    ok: bool = True
    devices: list[DeviceView]
    next_cursor: str | None


class DeviceResponse(msgspec.Struct, kw_only=True):
    """One relay."""

    ok: bool = True
    device: DeviceView


class DeviceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/devices/{id}``: absent fields stay as they are, null limits reset."""

    name: Label64 | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=100)] | msgspec.UnsetType | None = msgspec.UNSET
    per_minute_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | msgspec.UnsetType | None = msgspec.UNSET
    per_day_limit: Annotated[int, msgspec.Meta(ge=1, le=100000)] | msgspec.UnsetType | None = msgspec.UNSET
    sim_policy: SimPolicy | msgspec.UnsetType = msgspec.UNSET
    sim_limits: (
        dict[
            Annotated[str, msgspec.Meta(pattern=r"\A[0-3]\Z")],
            Annotated[int, msgspec.Meta(ge=1, le=100000)],
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    """Daily limit per SIM slot, replacing the stored ones (``{"0": 200, "1": 500}``; ``{}``: none)."""


class DeviceDeleted(msgspec.Struct, kw_only=True):
    """The device was unpaired: its token no longer opens a socket."""

    ok: bool = True
    device_id: str
    unpaired: bool = True


def _sims(svc: Services, device: DeviceRecord, reported: list[dict[str, Any]]) -> list[SimView]:
    usage = svc.pipeline.scheduler.sim_usage(device.id)
    return [
        SimView(
            slot=int(s["slot"]),
            carrier=s.get("carrier"),
            ready=bool(s.get("ready")),
            per_day=device.sim_limits.get(int(s["slot"])),
            sent_last_day=usage.get(int(s["slot"]), 0),
        )
        for s in reported
    ]


def _view(svc: Services, row: DeviceRow) -> DeviceView:
    device = device_from_row(row)
    conn = svc.hub.connection(device.id)
    telemetry = conn.telemetry if conn is not None else telemetry_from_row(row)
    return DeviceView(
        id=device.id,
        name=device.name,
        model=device.model,
        app_version=telemetry.app_version or device.app_version,
        online=svc.hub.is_online(device.id),
        enabled=device.enabled,
        last_seen_at=telemetry.last_seen_at,
        battery=telemetry.battery,
        charging=telemetry.charging,
        signal=telemetry.signal,
        network=telemetry.network,
        sims=_sims(svc, device, telemetry.sims),
        sim_policy=device.sim_policy,  # type: ignore[arg-type]  # one of them: the schema's CHECK
        queue_length=telemetry.queue_length,
        in_flight=svc.device_load(device.id),
        sent_last_hour=svc.hub.sent_last_hour(device.id),
        limits=DeviceLimits(
            max_in_flight=device.effective_max_in_flight,
            per_minute=device.effective_per_minute,
            per_day=device.per_day_limit,
            defaults=[
                name
                for name, configured in (
                    ("max_in_flight", device.max_in_flight),
                    ("per_minute", device.per_minute_limit),
                    ("per_day", device.per_day_limit),
                )
                if configured is None
            ],
            sim_per_day={str(slot): limit for slot, limit in sorted(device.sim_limits.items())},
        ),
        paired_at=device.paired_at,
    )


async def create_pairing(call: Call[PairingCodeRequest, None]) -> PairingCodeCreated:
    """A new pairing code for the caller's account."""
    svc = call.services
    live = await live_pairing_codes(svc.pool, account_id=call.account_id, max_failed_tries=MAX_FAILED_TRIES)
    if live.live >= MAX_PENDING_PAIRING_CODES and live.first_expiry is not None:
        raise ApiError.rate_limited(
            (live.first_expiry - svc.clock.now()).total_seconds(),
            f"at most {MAX_PENDING_PAIRING_CODES} unused pairing codes at once; use or let one expire",
            reason="pending_pairing_codes",
            limit=MAX_PENDING_PAIRING_CODES,
        )
    code = await create_pairing_code(
        svc.pool, call.account_id, ttl=timedelta(seconds=call.body.expires_in_seconds), clock=svc.clock
    )
    payload = qr_payload(code.code, svc.settings.api_base_url(svc.http_port))
    return PairingCodeCreated(code=code.code, qr_payload=payload, expires_at=code.expires_at)


def pairing_rate_limit(request: Request, svc: Services) -> None:
    """Pairing attempts per client address (before the body is read)."""
    client = request.client.host if request.client else "unknown"
    wait = svc.pair_limits.take(client)
    if wait > 0:
        raise ApiError.rate_limited(wait, "too many pairing attempts from this address")


async def pair(call: Call[PairRequest, None]) -> Paired:
    """The phone spends a pairing code and receives its device token and WebSocket URL."""
    svc, spec = call.services, call.body
    if (spec.code is None) == (spec.qr_payload is None):
        raise ApiError(
            "validation_error",
            "send exactly one of code or qr_payload",
            {"fields": {"code": "or qr_payload"}},
        )
    code = normalise_code(spec.code) if spec.code is not None else parse_qr_payload(spec.qr_payload or "")
    if code is None:
        field = "code" if spec.code is not None else "qr_payload"
        raise ApiError(
            "validation_error", "not a pairing code", {"fields": {field: "not a relaygate pairing code"}}
        )
    try:
        device = await pair_device(
            svc.pool, code, name=spec.name, model=spec.model, app_version=spec.app_version
        )
    except PairingFailed:
        raise ApiError("not_found", "pairing code unknown, expired, already used or locked") from None
    row = await device_for_account(svc.pool, device_id=device.device_id, account_id=device.account_id)
    assert row is not None  # paired just now
    svc.device_changed(device_from_row(row))
    return Paired(
        device_id=device.device_id,
        device_token=device.device_token,
        ws_url=svc.settings.relay_ws_url(svc.relay_port),
        heartbeat_interval_seconds=int(svc.settings.heartbeat_interval),
    )


async def list_devices(call: Call[None, PageQuery]) -> DeviceList:
    """The account's paired relays with their live state."""
    svc, query = call.services, call.query
    rows = await device_page(svc.pool, account_id=call.account_id, after=query.cursor, limit=query.limit + 1)
    items, next_cursor = page(rows, query.limit, lambda r: _view(svc, r), lambda d: d.id)
    return DeviceList(devices=items, next_cursor=next_cursor)


def _device_id(call: Call[Any, Any]) -> str:
    device_id = call.path["device_id"]
    if not has_prefix(device_id, "dev"):
        raise ApiError("not_found", "no such device", {"device_id": device_id[:64]})
    return device_id


async def update_device(call: Call[DeviceUpdate, None]) -> DeviceResponse:
    """Rename, enable/disable for routing, or change the sending limits of a relay."""
    device_id = _device_id(call)
    svc, spec = call.services, call.body

    def value(v: _T | msgspec.UnsetType) -> _T | None:
        return None if isinstance(v, msgspec.UnsetType) else v

    row = await store_update_device(
        svc.pool,
        device_id=device_id,
        account_id=call.account_id,
        name=value(spec.name),
        enabled=value(spec.enabled),
        max_in_flight=spec.max_in_flight,
        per_minute_limit=spec.per_minute_limit,
        per_day_limit=spec.per_day_limit,
        sim_policy=value(spec.sim_policy),
        sim_limits=value(spec.sim_limits),
    )
    if row is None:
        raise ApiError("not_found", "no such device", {"device_id": device_id})
    svc.device_changed(device_from_row(row))
    return DeviceResponse(device=_view(svc, row))


async def delete_device(call: Call[None, None]) -> DeviceDeleted:
    """Unpair: the device token is revoked and an open socket is closed with 4001."""
    device_id = _device_id(call)
    svc = call.services
    if not await unpair_device(svc.pool, device_id=device_id, account_id=call.account_id):
        raise ApiError("not_found", "no such device", {"device_id": device_id})
    svc.device_removed(device_id)
    await svc.hub.close_device(device_id, CloseCode.DEVICE_UNPAIRED, "device unpaired")
    return DeviceDeleted(device_id=device_id)
