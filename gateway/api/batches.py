"""``POST /v1/recipient-lists/queue`` (scope ``messages.send``) and ``/v1/batches/{id}``: queue a
whole recipient list, follow it, cancel what is still queued. The rules live in
:mod:`gateway.recipients.batches`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from gateway.api.common import idempotency_key
from gateway.api.messages import PRIORITIES
from gateway.api.routing import Call
from gateway.errors import ApiError
from gateway.events import BatchCounts
from gateway.ids import has_prefix
from gateway.recipients import batches as rules
from gateway.recipients.batches import Batch, BatchQueued, QueueSpec, Skipped
from gateway.sending.idempotency import replay, store_answer
from gateway.sending.messages import check_metadata, check_pinned_device, sending_start
from store import batches as store

__all__ = [
    "BatchCancelled",
    "BatchQueued",
    "BatchResponse",
    "QueueRequest",
    "cancel_batch",
    "examples",
    "get_batch",
    "queue_list",
]

CANCEL_REASON = "batch_cancelled"


class QueueRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/recipient-lists/queue``."""

    list_id: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]
    """May use ``{name}``, ``{phone}`` and any metadata key of the recipients (``{city}``);
    ``{{`` and ``}}`` are literal braces. A member without that metadata key gets an empty
    value; a placeholder no member has is refused."""
    priority: Literal["high", "normal", "low"] = "low"
    ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=7 * 24 * 3600)] = 24 * 3600
    """Each item fails ``expired`` if no relay took it within this time (default a day)."""
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    metadata: Annotated[dict[str, Any], msgspec.Meta(max_length=20)] | None = None
    """Copied to every item (and to its webhooks)."""
    send_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    """RFC 3339, up to 30 days ahead: every item is ``scheduled`` until then, and
    ``ttl_seconds`` counts from it."""


class BatchResponse(msgspec.Struct, kw_only=True):
    """One batch with its progress."""

    ok: bool = True
    batch: Batch


class BatchCancelled(msgspec.Struct, kw_only=True):
    """The batch after the cancel, and how many items it cancelled (those still queued)."""

    ok: bool = True
    batch: Batch
    cancelled: int


class _KeyTaken(Exception):
    """Another request with the same Idempotency-Key committed first: roll back and replay."""


def examples(when: datetime) -> dict[type[Any], Any]:
    """Example instances of this module's request and answer types, for the OpenAPI document."""
    batch = Batch(
        id="bat_01HV4Z8K2M3N4P5Q6R7S8T9V0Y",
        list_id="lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X",
        total=118,
        skipped=2,
        counts=BatchCounts(queued=40, dispatched=8, sent=30, delivered=38, failed=2, cancelled=0),
        created_at=when,
        completed_at=None,
        cancelled_at=None,
    )
    return {
        QueueRequest: QueueRequest(
            list_id="lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X",
            message="Hello {name}, our {city} shop is open on Sunday.",
            metadata={"campaign": "sunday"},
        ),
        BatchQueued: BatchQueued(
            batch_id=batch.id,
            queued=118,
            skipped=[
                Skipped(
                    recipient_id="rcp_01HV4Z8K2M3N4P5Q6R7S8T9V0W", phone="+998901234567", reason="opted_out"
                )
            ],
            skipped_total=2,
            queued_at=when,
        ),
        BatchResponse: BatchResponse(batch=batch),
        BatchCancelled: BatchCancelled(batch=batch, cancelled=40),
    }


def _batch_id(call: Call[Any, Any]) -> str:
    value = call.path["batch_id"]
    if not has_prefix(value, "bat"):
        raise ApiError("not_found", "no such batch", {"batch_id": value[:64]})
    return value


async def queue_list(call: Call[QueueRequest, None]) -> BatchQueued:
    """Queue every eligible member of a list, each its own message; answered after the commit
    of all of them (a list is queued whole or not at all)."""
    assert call.principal is not None
    account, body, svc = call.principal.account, call.body, call.services
    check_metadata(body.metadata)
    check_pinned_device(account, svc.pipeline, body.device_id, None)
    if not has_prefix(body.list_id, "lst"):
        raise ApiError("not_found", "no such list", {"list_id": body.list_id[:64]})
    now = svc.pipeline.now()
    start = sending_start(body.send_at, now)
    spec = QueueSpec(
        list_id=body.list_id,
        text=body.message,
        priority=PRIORITIES[body.priority],
        ttl_seconds=body.ttl_seconds,
        device_id=body.device_id,
        metadata=body.metadata,
        send_at=None if start == now else start,
    )
    key = idempotency_key(call)
    async with svc.pool.acquire() as conn:
        if key is not None:
            replayed = await replay(conn, account.id, key, call.raw_body, BatchQueued)
            if replayed is not None:
                return replayed
        try:
            async with conn.transaction():
                answer = await rules.queue_list(conn, account, spec, now=svc.clock.now(), policy_db=svc.pool)
                if key is not None and not await store_answer(conn, account.id, key, call.raw_body, answer):
                    raise _KeyTaken
        except _KeyTaken:
            replayed = await replay(conn, account.id, key or "", call.raw_body, BatchQueued)
            assert replayed is not None
            return replayed
    svc.pipeline.batch_queued(answer.batch_id, account.id, answer.send_at)
    return answer


async def get_batch(call: Call[None, None]) -> BatchResponse:
    """A batch's items per status."""
    batch = await rules.get_batch(call.services.pool, call.account_id, _batch_id(call))
    if batch is None:
        raise ApiError("not_found", "no such batch")
    return BatchResponse(batch=batch)


async def cancel_batch(call: Call[None, None]) -> BatchCancelled:
    """Cancel the batch's items that are still queued (those a relay has are not recalled)."""
    batch_id = _batch_id(call)
    pool = call.services.pool
    if await store.get(pool, account_id=call.account_id, batch_id=batch_id) is None:
        raise ApiError("not_found", "no such batch")
    await store.mark_cancelled(pool, batch_id=batch_id)
    queued = await store.queued_ids(pool, batch_id=batch_id)
    cancelled = await call.services.pipeline.cancel_queued(queued, CANCEL_REASON) if queued else []
    batch = await rules.get_batch(pool, call.account_id, batch_id)
    assert batch is not None
    return BatchCancelled(batch=batch, cancelled=len(cancelled))
