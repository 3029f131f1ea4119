"""``POST /v1/sms/send``, ``GET /v1/messages/status`` and ``GET /v1/messages``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import authorize, cursor_page, idempotency_key, json_response, services
from gateway.bodies import decode_json, read_body
from gateway.errors import ApiError
from gateway.ids import has_prefix
from gateway.messages import MessageSpec, accept_message, build_message, normalise_number
from scheduler import Priority
from store import queries as q

__all__ = ["list_messages", "message_status", "send_sms"]

PRIORITIES = {"high": Priority.HIGH, "normal": Priority.NORMAL, "low": Priority.LOW}
STATUSES = ("queued", "dispatched", "sent", "delivered", "failed")


class SendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/sms/send``."""

    to: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=7 * 24 * 3600)] = 3600
    sim_slot: Annotated[int, msgspec.Meta(ge=0, le=3)] | None = None
    metadata: Annotated[dict[str, Any], msgspec.Meta(max_length=20)] | None = None


class Attempt(msgspec.Struct, kw_only=True):
    """One hand-over of the message to a relay."""

    attempt: int
    device_id: str
    device_name: str | None
    dispatched_at: datetime
    acked_at: datetime | None
    outcome: str | None
    reason: str | None
    finished_at: datetime | None
    late_report: LateReport | None = None
    """A sent/delivered report of this attempt that came after the message had failed."""


class LateReport(msgspec.Struct, kw_only=True):
    """What the relay reported after the gateway had failed the message (status stays failed)."""

    status: str
    """``sent`` or ``delivered``."""
    at: datetime
    device_id: str


def _late_report(row: Any, device_id: str | None) -> LateReport | None:
    if row["late_report_status"] is None or device_id is None:
        return None
    return LateReport(status=row["late_report_status"], at=row["late_report_at"], device_id=device_id)


class MessageView(msgspec.Struct, kw_only=True):
    """A message's state, timeline and routing facts."""

    request_id: str
    status: str
    to: str
    device_id: str | None
    device_name: str | None
    attempts: int
    failure_reason: str | None
    kind: str
    priority: str
    encoding: str
    segments: int
    metadata: dict[str, Any] | None
    queued_at: datetime
    dispatched_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    expires_at: datetime
    late_report: LateReport | None
    """Set when a relay reported ``sent``/``delivered`` after the message had failed."""


class MessageStatus(MessageView, kw_only=True):
    """``GET /v1/messages/status``: the contract's fields plus the timeline and attempts."""

    ok: bool = True
    history: list[Attempt]


class MessageList(msgspec.Struct, kw_only=True):
    """A page of messages, newest first."""

    ok: bool = True
    messages: list[MessageView]
    next_cursor: str | None


_PRIORITY_NAMES = {int(Priority.OTP): "otp", 1: "high", 2: "normal", 3: "low"}


def _view_fields(r: Any) -> dict[str, Any]:
    return {
        "request_id": r["id"],
        "status": r["status"],
        "to": r["to_number"],
        "device_id": r["device_id"],
        "device_name": r["device_name"],
        "attempts": r["attempts"],
        "failure_reason": r["failure_reason"],
        "kind": r["kind"],
        "priority": _PRIORITY_NAMES.get(r["priority"], "normal"),
        "encoding": r["encoding"],
        "segments": r["segments"],
        "metadata": json.loads(r["metadata"]) if r["metadata"] else None,
        "queued_at": r["queued_at"],
        "dispatched_at": r["dispatched_at"],
        "sent_at": r["sent_at"],
        "delivered_at": r["delivered_at"],
        "failed_at": r["failed_at"],
        "expires_at": r["expires_at"],
        "late_report": _late_report(r, r["device_id"]),
    }


async def send_sms(request: Request) -> Response:
    """Validate, store (answer only after the commit) and queue one SMS."""
    principal = await authorize(request, "messages.send", sending=True)
    svc = services(request)
    raw = await read_body(request, svc.settings.max_body_bytes)
    spec = decode_json(raw, SendRequest)
    key = idempotency_key(request)
    message = build_message(
        principal.account,
        MessageSpec(
            to=spec.to,
            text=spec.message,
            priority=PRIORITIES[spec.priority],
            ttl_seconds=spec.ttl_seconds,
            device_id=spec.device_id,
            sim_slot=spec.sim_slot,
            metadata=spec.metadata,
        ),
        svc.pipeline,
        max_queue=svc.settings.max_queue_per_account,
    )
    answer = await accept_message(svc.pool, svc.pipeline, message, idempotency_key=key, request_body=raw)
    return json_response(answer)


async def message_status(request: Request) -> Response:
    """Status, device, attempts, failure reason and timeline of one message."""
    principal = await authorize(request, "messages.read")
    request_id = request.query_params.get("request_id", "")
    if not request_id:
        raise ApiError("validation_error", "request_id is required", {"fields": {"request_id": "required"}})
    svc = services(request)
    row = None
    if has_prefix(request_id, "req"):
        row = await svc.pool.fetchrow(q.MESSAGE_STATUS, request_id, principal.account.id)
    if row is None:
        raise ApiError("not_found", "no such message", {"request_id": request_id[:64]})
    attempts = await svc.pool.fetch(q.MESSAGE_ATTEMPTS, request_id)
    history = [
        Attempt(
            attempt=a["attempt"],
            device_id=a["device_id"],
            device_name=a["device_name"],
            dispatched_at=a["dispatched_at"],
            acked_at=a["acked_at"],
            outcome=a["outcome"],
            reason=a["reason"],
            finished_at=a["finished_at"],
            late_report=_late_report(a, a["device_id"]),
        )
        for a in attempts
    ]
    return json_response(MessageStatus(**_view_fields(row), history=history))


async def list_messages(request: Request) -> Response:
    """The account's messages, newest first, filtered by status, since and to."""
    principal = await authorize(request, "messages.read")
    cursor, limit = cursor_page(request)
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(
            "validation_error", "invalid query", {"fields": {"status": f"one of {', '.join(STATUSES)}"}}
        )
    since = None
    if "since" in params:
        try:
            since = datetime.fromisoformat(params["since"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                "validation_error", "invalid query", {"fields": {"since": "RFC 3339 time"}}
            ) from None
        if since.tzinfo is None:
            raise ApiError(
                "validation_error", "invalid query", {"fields": {"since": "needs a time zone (Z)"}}
            )
    to = params.get("to")
    if to is not None:
        to = normalise_number(to, principal.account.default_region)
    rows = await services(request).pool.fetch(
        q.MESSAGE_LIST, principal.account.id, cursor, limit + 1, status, since, to
    )
    items = [MessageView(**_view_fields(r)) for r in rows[:limit]]
    return json_response(
        MessageList(messages=items, next_cursor=items[-1].request_id if len(rows) > limit else None)
    )
