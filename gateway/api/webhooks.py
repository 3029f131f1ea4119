"""``/v1/webhooks``: endpoints (create, list, get, update, delete, rotate-secret, test) and the
delivery log (list, get with attempts, manual retry). Scope ``webhooks.manage``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import authorize, body, cursor_page, json_response, services
from gateway.api.fields import Label200
from gateway.errors import ApiError
from gateway.ids import has_prefix, new_id
from gateway.limits import MAX_WEBHOOK_ENDPOINTS, too_many
from gateway.webhooks.signing import EVENT_TYPES, EventType, new_secret
from gateway.webhooks.ssrf import resolve_checked, validate_url
from store import queries as q

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


class WebhookCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/webhooks``."""

    url: Url
    events: Events
    description: Description = ""


class WebhookUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/webhooks/{id}``; absent fields stay as they are."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET


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


class Attempt(msgspec.Struct, kw_only=True):
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
    attempts_log: list[Attempt]


def _webhook(r: Any) -> Webhook:
    return Webhook(
        id=r["id"],
        url=r["url"],
        events=list(r["events"]),
        description=r["description"],
        enabled=r["enabled"],
        disabled_reason=r["disabled_reason"],
        created_at=r["created_at"],
        previous_secret_expires_at=r["previous_expires_at"],
    )


def _delivery(r: Any) -> Delivery:
    return Delivery(
        id=r["id"],
        webhook_id=r["endpoint_id"],
        event_id=r["event_id"],
        event_type=r["event_type"],
        request_id=r["request_id"],
        status=r["status"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_attempt_at=r["last_attempt_at"],
        created_at=r["created_at"],
    )


async def _checked_url(request: Request, url: str) -> str:
    """Refuse bad or (unless allowed) non-public targets up front; delivery checks again."""
    allow = services(request).settings.webhook_allow_private
    reason = validate_url(url, allow_private=allow)
    if reason is None:
        try:
            await resolve_checked(urlsplit(url).hostname or "", 443, allow_private=allow)
        except OSError as exc:
            reason = str(exc)
    if reason is not None:
        raise ApiError("validation_error", "webhook URL refused", {"fields": {"url": reason}})
    return url


def _endpoint_id(request: Request) -> str:
    value: str = request.path_params["webhook_id"]
    if not has_prefix(value, "whk"):
        raise ApiError("not_found", "no such webhook", {"webhook_id": value[:64]})
    return value


async def create(request: Request) -> Response:
    """Register an endpoint; its secret is in this answer only."""
    principal = await authorize(request, "webhooks.manage")
    spec = await body(request, WebhookCreate)
    pool = services(request).pool
    if await pool.fetchval(q.WEBHOOK_COUNT, principal.account.id) >= MAX_WEBHOOK_ENDPOINTS:
        raise too_many("webhook_endpoints", MAX_WEBHOOK_ENDPOINTS, "webhook endpoints")
    url = await _checked_url(request, spec.url)
    secret = new_secret()
    events = sorted(set(spec.events), key=EVENT_TYPES.index)
    row = await services(request).pool.fetchrow(
        q.WEBHOOK_INSERT, new_id("whk"), principal.account.id, url, events, spec.description, secret
    )
    return json_response(WebhookCreated(webhook=_webhook(row), secret=secret), 201)


async def list_webhooks(request: Request) -> Response:
    """The account's endpoints."""
    principal = await authorize(request, "webhooks.manage")
    cursor, limit = cursor_page(request)
    rows = await services(request).pool.fetch(q.WEBHOOK_LIST, principal.account.id, cursor, limit + 1)
    items = [_webhook(r) for r in rows[:limit]]
    return json_response(WebhookList(webhooks=items, next_cursor=items[-1].id if len(rows) > limit else None))


async def get(request: Request) -> Response:
    """One endpoint."""
    principal = await authorize(request, "webhooks.manage")
    row = await services(request).pool.fetchrow(q.WEBHOOK_GET, _endpoint_id(request), principal.account.id)
    if row is None:
        raise ApiError("not_found", "no such webhook")
    return json_response(WebhookResponse(webhook=_webhook(row)))


async def update(request: Request) -> Response:
    """Change the URL, events, description, or enable/disable."""
    principal = await authorize(request, "webhooks.manage")
    endpoint_id = _endpoint_id(request)
    spec = await body(request, WebhookUpdate)
    url = None if spec.url is msgspec.UNSET else await _checked_url(request, spec.url)
    events = None if spec.events is msgspec.UNSET else sorted(set(spec.events), key=EVENT_TYPES.index)
    row = await services(request).pool.fetchrow(
        q.WEBHOOK_UPDATE,
        endpoint_id,
        principal.account.id,
        url,
        events,
        None if spec.enabled is msgspec.UNSET else spec.enabled,
        None if spec.description is msgspec.UNSET else spec.description,
    )
    if row is None:
        raise ApiError("not_found", "no such webhook")
    return json_response(WebhookResponse(webhook=_webhook(row)))


async def delete(request: Request) -> Response:
    """Remove an endpoint; its pending deliveries stop."""
    principal = await authorize(request, "webhooks.manage")
    endpoint_id = _endpoint_id(request)
    svc = services(request)
    if await svc.pool.fetchval(q.WEBHOOK_DELETE, endpoint_id, principal.account.id) is None:
        raise ApiError("not_found", "no such webhook")
    await svc.pool.execute(q.DELIVERIES_CANCEL_FOR_ENDPOINT, endpoint_id)
    return json_response(WebhookDeleted(webhook_id=endpoint_id))


async def rotate_secret(request: Request) -> Response:
    """A new secret; the old one keeps signing alongside it for 24 hours."""
    principal = await authorize(request, "webhooks.manage")
    secret = new_secret()
    row = await services(request).pool.fetchrow(
        q.WEBHOOK_ROTATE, _endpoint_id(request), principal.account.id, secret, ROTATION_OVERLAP_SECONDS
    )
    if row is None:
        raise ApiError("not_found", "no such webhook")
    return json_response(SecretRotated(webhook=_webhook(row), secret=secret))


async def send_test(request: Request) -> Response:
    """Queue a ``webhook.test`` event for this endpoint only."""
    principal = await authorize(request, "webhooks.manage")
    endpoint_id = _endpoint_id(request)
    svc = services(request)
    event_id, delivery_id = new_id("evt"), new_id("dlv")
    async with svc.pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(q.WEBHOOK_GET, endpoint_id, principal.account.id) is None:
            raise ApiError("not_found", "no such webhook")
        data = {"webhook_id": endpoint_id, "message": "relaygate test event"}
        await conn.execute(
            q.EVENT_INSERT_FANNED_OUT, event_id, principal.account.id, "webhook.test", json.dumps(data)
        )
        await conn.execute(
            q.DELIVERY_INSERT, delivery_id, principal.account.id, endpoint_id, event_id, "webhook.test", None
        )
    svc.webhooks.wake()
    return json_response(TestQueued(delivery_id=delivery_id, event_id=event_id), 202)


async def list_deliveries(request: Request) -> Response:
    """Deliveries, newest first, filtered by webhook_id, event_type, status and request_id."""
    principal = await authorize(request, "webhooks.manage")
    cursor, limit = cursor_page(request)
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in ("pending", "succeeded", "failed", "blocked"):
        raise ApiError(
            "validation_error", "invalid query", {"fields": {"status": "pending|succeeded|failed|blocked"}}
        )
    event_type = params.get("event_type")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ApiError("validation_error", "invalid query", {"fields": {"event_type": "unknown event type"}})
    rows = await services(request).pool.fetch(
        q.DELIVERIES_LIST,
        principal.account.id,
        cursor,
        limit + 1,
        params.get("webhook_id"),
        event_type,
        status,
        params.get("request_id"),
    )
    items = [_delivery(r) for r in rows[:limit]]
    return json_response(
        DeliveryList(deliveries=items, next_cursor=items[-1].id if len(rows) > limit else None)
    )


def _delivery_id(request: Request) -> str:
    value: str = request.path_params["delivery_id"]
    if not value.startswith("dlv_") or len(value) > 80:
        raise ApiError("not_found", "no such delivery", {"delivery_id": value[:80]})
    return value


async def get_delivery(request: Request) -> Response:
    """One delivery with its payload and every attempt."""
    principal = await authorize(request, "webhooks.manage")
    delivery_id = _delivery_id(request)
    svc = services(request)
    row = await svc.pool.fetchrow(q.DELIVERY_GET, delivery_id, principal.account.id)
    if row is None:
        raise ApiError("not_found", "no such delivery")
    attempts = [Attempt(**dict(a)) for a in await svc.pool.fetch(q.DELIVERY_ATTEMPTS, delivery_id)]
    data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
    payload = {"type": row["event_type"], "data": data}
    return json_response(DeliveryDetail(delivery=_delivery(row), payload=payload, attempts_log=attempts))


async def retry_delivery(request: Request) -> Response:
    """Redeliver now, with the same ``webhook-id``; the attempt is logged as manual."""
    principal = await authorize(request, "webhooks.manage")
    delivery_id = _delivery_id(request)
    svc = services(request)
    if await svc.pool.fetchval(q.DELIVERY_RETRY_NOW, delivery_id, principal.account.id) is None:
        raise ApiError("not_found", "no such delivery")
    svc.webhooks.wake()
    row = await svc.pool.fetchrow(q.DELIVERY_GET, delivery_id, principal.account.id)
    return json_response(DeliveryResponse(delivery=_delivery(row)), 202)
