"""Who is calling the mobile API: the ``Authorization`` schemes the SMSGate app uses, the
phone's own device token, and the webhook signatures of its ``/inbound`` posts.

Phones hold ``rgm_…`` tokens (stored hashed in ``devices`` like a WebSocket relay's ``rgd_…``);
each kind is refused by the other kind's listener. A phone's webhook signing key is derived
from the server secret and the device id, so nothing more is stored and unpairing the device
ends it.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

from starlette.requests import Request

from gateway.access.tokens import hash_token, is_well_formed
from gateway.errors import ApiError
from gateway.fleet.devices import DeviceRecord, LiveTelemetry, device_from_row, telemetry_from_row
from gateway.secret import ServerSecret
from gateway.services import Services
from store.devices import device_by_token

__all__ = [
    "PHONE_PREFIX",
    "SIGNATURE_WINDOW",
    "authorization",
    "phone_device",
    "signature_ok",
    "signing_key",
]

PHONE_PREFIX = "rgm"
SIGNATURE_WINDOW = 24 * 3600
"""Seconds a webhook's ``X-Timestamp`` may be off: the app retries a failed webhook for hours,
and stored inbound messages are de-duplicated, so a replay changes nothing."""


def authorization(request: Request) -> tuple[str, str] | None:
    """``("code", "ABCD-EFGH")`` from ``Authorization: Code ABCD-EFGH``; the scheme lower-cased."""
    header = request.headers.get("authorization")
    if not header or len(header) > 8192:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    return scheme.lower(), value


def _unauthorized(message: str) -> ApiError:
    return ApiError("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def phone_device(request: Request, svc: Services) -> tuple[DeviceRecord, LiveTelemetry]:
    """The paired phone whose ``Bearer rgm_…`` token came with the request, else 401 (the app
    registers again on 401)."""
    auth = authorization(request)
    if auth is None or auth[0] != "bearer":
        raise _unauthorized("send Authorization: Bearer <device token> (register with POST /device)")
    token = auth[1]
    if not is_well_formed(token, PHONE_PREFIX):
        raise _unauthorized("unknown device token; register again")
    key = hash_token(token)
    known = svc.hub.known_device(key)
    if known is None:
        row = await device_by_token(svc.pool, token_hash=key)
        if row is None:
            raise _unauthorized("unknown, revoked or unpaired device token; register again")
        known = device_from_row(row), telemetry_from_row(row)
        svc.hub.remember_device(key, *known)
        known = svc.hub.known_device(key) or known
    return known


def signing_key(secret: ServerSecret, device_id: str) -> str:
    """The key the phone signs its webhooks with (pushed in ``GET /settings``)."""
    return secret.keyed_hash("smsgate.webhook-signing", device_id).hex()


def signature_ok(key: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float) -> bool:
    """``X-Signature`` = hex HMAC-SHA256(key, body ‖ X-Timestamp), the timestamp within
    ``SIGNATURE_WINDOW`` of ``now``."""
    if not timestamp or not signature or len(timestamp) > 12 or len(signature) != 64:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    expected = hmac.new(key.encode(), body + timestamp.encode(), sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())
