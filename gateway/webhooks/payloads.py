"""The bytes a webhook request carries: one event, or a batch of events for an endpoint that asked.

The event's ``data`` arrives from PostgreSQL as JSON text and is copied into the body as it is
(never decoded and encoded again), so the body of an event is the same on every attempt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import msgspec

from gateway.timefmt import rfc3339

__all__ = ["BATCH_ID_PREFIX", "batch_body", "batch_webhook_id", "event_body"]

BATCH_ID_PREFIX = "whb_"
_encode = msgspec.json.encode


def event_body(event_type: str, created_at: datetime, data_json: str) -> bytes:
    """``{"type", "timestamp", "data"}`` of one event."""
    return b"".join(
        (
            b'{"type":',
            _encode(event_type),
            b',"timestamp":',
            _encode(rfc3339(created_at)),
            b',"data":',
            data_json.encode(),
            b"}",
        )
    )


def _batch_item(event_id: str, body: bytes) -> bytes:
    # {"id": ..., "type": ..., "timestamp": ..., "data": ...}: the event's own body with its id first
    return b'{"id":' + _encode(event_id) + b"," + body[1:]


def batch_body(events: Sequence[tuple[str, bytes]], created_at: datetime) -> bytes:
    """``{"type": "batch", "timestamp", "data": {"events": [...]}}`` of ``(event_id, event_body)``
    pairs, in the order given; each item is the event's own body with its ``id`` added."""
    items = b",".join(_batch_item(event_id, body) for event_id, body in events)
    return (
        b'{"type":"batch","timestamp":'
        + _encode(rfc3339(created_at))
        + b',"data":{"events":['
        + items
        + b"]}}"
    )


def batch_webhook_id(event_ids: Sequence[str]) -> str:
    """The ``webhook-id`` of a batched request: the same whenever the same events travel together."""
    digest = hashlib.sha256(",".join(sorted(event_ids)).encode()).hexdigest()
    return BATCH_ID_PREFIX + digest[:32]
