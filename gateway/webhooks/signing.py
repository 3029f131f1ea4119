"""Standard Webhooks signing (https://www.standardwebhooks.com/), pure.

Each request carries ``webhook-id`` (the event id: the same on every retry), ``webhook-timestamp``
(seconds, per attempt) and ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` values, one per active secret (two during a rotation). Secrets are
``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal, get_args

__all__ = ["EVENT_TYPES", "EventType", "new_secret", "sign", "signature_headers"]

EventType = Literal[
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.cancelled",
    "message.late_report",
    "otp.verified",
    "device.online",
    "device.offline",
    "webhook.test",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` value."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets_in_use: list[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of one attempt, signed with every secret in use."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_in_use),
        "content-type": "application/json",
        "user-agent": "relaygate-webhooks/1",
    }
