"""``/v1/webhooks``: endpoints (create, list, get, update, delete, rotate-secret, test) and the
delivery log (list, get with attempts, manual retry). Scope ``webhooks.manage``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from gateway.api.common import PageQuery, page
from gateway.api.fields import Label200
from gateway.api.routing import Call
from gateway.errors import ApiError
from gateway.events import WebhookTestData, emit
from gateway.ids import has_prefix, new_id
from gateway.limits import MAX_WEBHOOK_ENDPOINTS, too_many
from gateway.services import Services
from gateway.webhooks.signing import EVENT_TYPES, EventType, new_secret
from gateway.webhooks.ssrf import resolve_checked, validate_url
from store import deliveries
from store import webhooks as store
from store.deliveries import DeliveryRow
from store.webhooks import EndpointRow

__all__ = [
    "create",
    "delete",
    "get",
    "get_delivery",
    "list_deliveries",
    "list_webhooks",
    "retry_delivery",
    "rotate_secret",
    "send_test",
    "update",
]

ROTATION_OVERLAP_SECONDS = 24 * 3600
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]
Events = Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EVENT_TYPES))]
Description = Label200
MAX_BATCH_EVENTS = 100
MAX_BATCH_WAIT_MS = 10_000


class WebhookBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Batched delivery: up to ``max_events`` events in one signed request, sent when that many
    are due or when the first of them has waited ``max_wait_ms``."""

    max_events: Annotated[int, msgspec.Meta(ge=2, le=MAX_BATCH_EVENTS)]
    max_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_BATCH_WAIT_MS)] = 1000


class WebhookCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/webhooks``."""

    url: Url
    events: Events
    description: Description = ""
    batch: WebhookBatch | None = None


class WebhookUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/webhooks/{id}``; absent fields stay as they are."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    batch: WebhookBatch | msgspec.UnsetType | None = msgspec.UNSET


class Webhook(msgspec.Struct, kw_only=True):
    """An endpoint as the API shows it (never its secret)."""

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    previous_secret_expires_at: datetime | None
    batch: WebhookBatch | None


class WebhookCreated(msgspec.Struct, kw_only=True):
    """The new endpoint and its signing secret, shown only here."""

    ok: bool = True
    webhook: Webhook
    secret: str


class WebhookResponse(msgspec.Struct, kw_only=True):
    """One endpoint."""

    ok: bool = True
    webhook: Webhook


class WebhookList(msgspec.Struct, kw_only=True):
    """The account's endpoints."""

    ok: bool = True
    webhooks: list[Webhook]
    next_cursor: str | None


class SecretRotated(msgspec.Struct, kw_only=True):
    """The new secret; the old one keeps signing too until ``previous_secret_expires_at``."""

    ok: bool = True
    webhook: Webhook
    secret: str


class WebhookDeleted(msgspec.Struct, kw_only=True):
    """The endpoint is gone; its pending deliveries were stopped."""

    ok: bool = True
    webhook_id: str
    deleted: bool = True


class TestQueued(msgspec.Struct, kw_only=True):
    """A ``webhook.test`` event queued for this endpoint."""

    ok: bool = True
    delivery_id: str
    event_id: str


class Delivery(msgspec.Struct, kw_only=True):
    """One event for one endpoint."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    request_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    created_at: datetime


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    """One HTTP attempt of a delivery."""

    attempt: int
    trigger: str
    started_at: datetime
    duration_ms: int | None
    http_status: int | None
    error: str | None
    response_excerpt: str | None
    outcome: str
    next_attempt_at: datetime | None


class DeliveryList(msgspec.Struct, kw_only=True):
    """A page of deliveries, newest first."""

    ok: bool = True
    deliveries: list[Delivery]
    next_cursor: str | None


class DeliveryResponse(msgspec.Struct, kw_only=True):
    """One delivery (after a manual retry was queued)."""

    ok: bool = True
    delivery: Delivery


class DeliveryDetail(msgspec.Struct, kw_only=True):
    """A delivery with its payload and every attempt."""

    ok: bool = True
    delivery: Delivery
    payload: dict[str, Any]
    attempts_log: list[DeliveryAttempt]


def _webhook(r: EndpointRow) -> Webhook:
    batch = None
    if r.batch_max_events is not None:
        batch = WebhookBatch(max_events=r.batch_max_events, max_wait_ms=r.batch_max_wait_ms or 0)
    return Webhook(
        id=r.id,
        url=r.url,
        events=r.events,
        description=r.description,
        enabled=r.enabled,
        disabled_reason=r.disabled_reason,
        created_at=r.created_at,
        previous_secret_expires_at=r.previous_expires_at,
        batch=batch,
    )


def _delivery(r: DeliveryRow) -> Delivery:
    return Delivery(
        id=r.id,
        webhook_id=r.endpoint_id,
        event_id=r.event_id,
        event_type=r.event_type,
        request_id=r.request_id,
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_attempt_at=r.last_attempt_at,
        created_at=r.created_at,
    )


class DeliveryListQuery(PageQuery, kw_only=True):
    """Filters of ``GET /v1/webhooks/deliveries``."""

    webhook_id: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    event_type: EventType | None = None
    status: Literal["pending", "succeeded", "failed", "blocked"] | None = None
    request_id: Annotated[str, msgspec.Meta(max_length=80)] | None = None


async def _checked_url(svc: Services, url: str) -> str:
    """Refuse bad or (unless allowed) non-public targets up front; delivery checks again."""
    allow = svc.settings.webhook_allow_private
    reason = validate_url(url, allow_private=allow)
    if reason is None:
        try:
            await resolve_checked(urlsplit(url).hostname or "", 443, allow_private=allow)
        except OSError as exc:
            reason = str(exc)
    if reason is not None:
        raise ApiError("validation_error", "webhook URL refused", {"fields": {"url": reason}})
    return url


def _endpoint_id(call: Call[Any, Any]) -> str:
    value = call.path["webhook_id"]
    if not has_prefix(value, "whk"):
        raise ApiError("not_found", "no such webhook", {"webhook_id": value[:64]})
    return value


async def create(call: Call[WebhookCreate, None]) -> WebhookCreated:
    """Register an endpoint; its secret is in this answer only."""
    svc, spec = call.services, call.body
    if await store.count_endpoints(svc.pool, account_id=call.account_id) >= MAX_WEBHOOK_ENDPOINTS:
        raise too_many("webhook_endpoints", MAX_WEBHOOK_ENDPOINTS, "webhook endpoints")
    url = await _checked_url(svc, spec.url)
    secret = new_secret()
    row = await store.insert_endpoint(
        svc.pool,
        endpoint_id=new_id("whk"),
        account_id=call.account_id,
        url=url,
        events=sorted(set(spec.events), key=EVENT_TYPES.index),
        description=spec.description,
        secret=secret,
        batch_max_events=None if spec.batch is None else spec.batch.max_events,
        batch_max_wait_ms=None if spec.batch is None else spec.batch.max_wait_ms,
    )
    return WebhookCreated(webhook=_webhook(row), secret=secret)


async def list_webhooks(call: Call[None, PageQuery]) -> WebhookList:
    """The account's endpoints."""
    query = call.query
    rows = await store.list_endpoints(
        call.services.pool, account_id=call.account_id, after=query.cursor, limit=query.limit + 1
    )
    items, next_cursor = page(rows, query.limit, _webhook, lambda w: w.id)
    return WebhookList(webhooks=items, next_cursor=next_cursor)


async def get(call: Call[None, None]) -> WebhookResponse:
    """One endpoint."""
    row = await store.get_endpoint(
        call.services.pool, endpoint_id=_endpoint_id(call), account_id=call.account_id
    )
    if row is None:
        raise ApiError("not_found", "no such webhook")
    return WebhookResponse(webhook=_webhook(row))


async def update(call: Call[WebhookUpdate, None]) -> WebhookResponse:
    """Change the URL, events, description, or enable/disable."""
    endpoint_id = _endpoint_id(call)
    svc, spec = call.services, call.body
    url = None if spec.url is msgspec.UNSET else await _checked_url(svc, spec.url)
    events: list[str] | None = None
    if not isinstance(spec.events, msgspec.UnsetType):
        events = sorted(set(spec.events), key=EVENT_TYPES.index)
    batch = None if isinstance(spec.batch, msgspec.UnsetType) else spec.batch
    row = await store.update_endpoint(
        svc.pool,
        endpoint_id=endpoint_id,
        account_id=call.account_id,
        url=url,
        events=events,
        enabled=None if spec.enabled is msgspec.UNSET else spec.enabled,
        description=None if spec.description is msgspec.UNSET else spec.description,
        set_batch=spec.batch is not msgspec.UNSET,
        batch_max_events=None if batch is None else batch.max_events,
        batch_max_wait_ms=None if batch is None else batch.max_wait_ms,
    )
    if row is None:
        raise ApiError("not_found", "no such webhook")
    svc.webhooks.forget(endpoint_id)
    return WebhookResponse(webhook=_webhook(row))


async def delete(call: Call[None, None]) -> WebhookDeleted:
    """Remove an endpoint; its pending deliveries stop."""
    endpoint_id = _endpoint_id(call)
    if not await store.delete_endpoint(
        call.services.pool, endpoint_id=endpoint_id, account_id=call.account_id
    ):
        raise ApiError("not_found", "no such webhook")
    call.services.webhooks.forget(endpoint_id)
    return WebhookDeleted(webhook_id=endpoint_id)


async def rotate_secret(call: Call[None, None]) -> SecretRotated:
    """A new secret; the old one keeps signing alongside it for 24 hours."""
    secret, endpoint_id = new_secret(), _endpoint_id(call)
    row = await store.rotate_secret(
        call.services.pool,
        endpoint_id=endpoint_id,
        account_id=call.account_id,
        secret=secret,
        overlap_seconds=ROTATION_OVERLAP_SECONDS,
    )
    if row is None:
        raise ApiError("not_found", "no such webhook")
    call.services.webhooks.forget(endpoint_id)
    return SecretRotated(webhook=_webhook(row), secret=secret)


async def send_test(call: Call[None, None]) -> TestQueued:
    """Queue a ``webhook.test`` event for this endpoint only."""
    endpoint_id = _endpoint_id(call)
    svc = call.services
    delivery_id = new_id("dlv")
    async with svc.pool.acquire() as conn, conn.transaction():
        if await store.get_endpoint(conn, endpoint_id=endpoint_id, account_id=call.account_id) is None:
            raise ApiError("not_found", "no such webhook")
        data = WebhookTestData(webhook_id=endpoint_id, message="relaygate test event")
        event_id = await emit(conn, call.account_id, "webhook.test", data)
        # this one endpoint only, so the event skips fan-out
        await deliveries.insert_test_delivery(
            conn,
            delivery_id=delivery_id,
            account_id=call.account_id,
            endpoint_id=endpoint_id,
            event_id=event_id,
        )
    svc.webhooks.wake()
    return TestQueued(delivery_id=delivery_id, event_id=event_id)


async def list_deliveries(call: Call[None, DeliveryListQuery]) -> DeliveryList:
    """Deliveries, newest first, filtered by webhook_id, event_type, status and request_id."""
    query = call.query
    rows = await deliveries.list_deliveries(
        call.services.pool,
        account_id=call.account_id,
        before=query.cursor,
        limit=query.limit + 1,
        endpoint_id=query.webhook_id,
        event_type=query.event_type,
        status=query.status,
        request_id=query.request_id,
    )
    items, next_cursor = page(rows, query.limit, _delivery, lambda d: d.id)
    return DeliveryList(deliveries=items, next_cursor=next_cursor)


def _delivery_id(call: Call[Any, Any]) -> str:
    value = call.path["delivery_id"]
    if not value.startswith("dlv_") or len(value) > 80:
        raise ApiError("not_found", "no such delivery", {"delivery_id": value[:80]})
    return value


async def get_delivery(call: Call[None, None]) -> DeliveryDetail:
    """One delivery with its payload and every attempt."""
    delivery_id = _delivery_id(call)
    pool = call.services.pool
    found = await deliveries.get_delivery(pool, delivery_id=delivery_id, account_id=call.account_id)
    if found is None:
        raise ApiError("not_found", "no such delivery")
    attempts = [
        DeliveryAttempt(**msgspec.structs.asdict(a))
        for a in await deliveries.delivery_attempts(pool, delivery_id=delivery_id)
    ]
    payload = {"type": found.delivery.event_type, "data": found.data}
    return DeliveryDetail(delivery=_delivery(found.delivery), payload=payload, attempts_log=attempts)


async def retry_delivery(call: Call[None, None]) -> DeliveryResponse:
    """Redeliver now, with the same ``webhook-id``; the attempt is logged as manual."""
    delivery_id = _delivery_id(call)
    svc = call.services
    if not await deliveries.retry_delivery_now(svc.pool, delivery_id=delivery_id, account_id=call.account_id):
        raise ApiError("not_found", "no such delivery")
    svc.webhooks.wake()
    found = await deliveries.get_delivery(svc.pool, delivery_id=delivery_id, account_id=call.account_id)
    if found is None:  # deleted in between (its account or endpoint went away)
        raise ApiError("not_found", "no such delivery")
    return DeliveryResponse(delivery=_delivery(found.delivery))
