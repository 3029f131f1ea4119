"""``POST /v1/sms/send``, ``GET /v1/messages/status``, ``GET /v1/messages`` and
``DELETE /v1/messages/{request_id}`` (cancel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from gateway.api.common import PageQuery, idempotency_key, invalid_query, page
from gateway.api.routing import Call, Reply
from gateway.errors import ApiError
from gateway.ids import has_prefix
from gateway.sending.messages import Accepted, MessageSpec, accept_message, build_message, normalise_number
from scheduler import Priority
from store import messages as store

__all__ = [
    "Accepted",
    "CancelAnswer",
    "MessageList",
    "MessageListQuery",
    "MessageStatus",
    "SendRequest",
    "StatusQuery",
    "cancel_message",
    "list_messages",
    "message_status",
    "send_sms",
]

PRIORITIES = {"high": Priority.HIGH, "normal": Priority.NORMAL, "low": Priority.LOW}


class SendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/sms/send``."""

    to: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=7 * 24 * 3600)] = 3600
    sim_slot: Annotated[int, msgspec.Meta(ge=0, le=3)] | None = None
    metadata: Annotated[dict[str, Any], msgspec.Meta(max_length=20)] | None = None
    transactional: bool = False
    """A login code, receipt or other message the recipient asked for: it goes to a number that
    opted out of this account's messages too."""
    send_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    """RFC 3339 with an offset, at most 30 days ahead: the message is ``scheduled`` until then
    (``ttl_seconds`` count from it). Up to 60 s in the past means now."""


class MessageAttempt(msgspec.Struct, kw_only=True):
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


def _late_report(row: store.MessageRow | store.AttemptRow, device_id: str | None) -> LateReport | None:
    if row.late_report_status is None or row.late_report_at is None or device_id is None:
        return None
    return LateReport(status=row.late_report_status, at=row.late_report_at, device_id=device_id)


class MessageView(msgspec.Struct, kw_only=True):
    """A message's state, timeline and routing facts."""

    request_id: str
    status: str
    to: str
    device_id: str | None
    device_name: str | None
    attempts: int
    failure_reason: str | None
    failure_reason_detail: str | None
    """For people: e.g. "last attempt: radio_off on dev_…" when the message expired."""
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
    send_at: datetime | None = None
    """The time the request asked for (``send_at``), if any."""
    not_before: datetime | None = None
    """While ``scheduled``: when it joins the queue."""
    hold_reason: str | None = None
    """Why a ``scheduled`` message waits: ``send_at`` or ``quiet_hours``."""
    cancel_requested_at: datetime | None = None
    """When a cancel was asked of the relay holding it (protocol v1.1), if one was."""
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    """Why it was cancelled: ``api``, ``otp_replaced``, …"""


class MessageStatus(MessageView, kw_only=True):
    """``GET /v1/messages/status``: the contract's fields plus the timeline and attempts."""

    ok: bool = True
    history: list[MessageAttempt]


class MessageList(msgspec.Struct, kw_only=True):
    """A page of messages, newest first."""

    ok: bool = True
    messages: list[MessageView]
    next_cursor: str | None


_PRIORITY_NAMES = {int(Priority.OTP): "otp", 1: "high", 2: "normal", 3: "low"}


def _view_fields(r: store.MessageRow) -> dict[str, Any]:
    scheduled = r.status == "scheduled"
    return {
        "request_id": r.id,
        "status": r.status,
        "to": r.to_number,
        "device_id": r.device_id,
        "device_name": r.device_name,
        "attempts": r.attempts,
        "failure_reason": r.failure_reason,
        "failure_reason_detail": r.failure_reason_detail,
        "kind": r.kind,
        "priority": _PRIORITY_NAMES.get(r.priority, "normal"),
        "encoding": r.encoding,
        "segments": r.segments,
        "metadata": r.metadata or None,
        "queued_at": r.queued_at,
        "dispatched_at": r.dispatched_at,
        "sent_at": r.sent_at,
        "delivered_at": r.delivered_at,
        "failed_at": r.failed_at,
        "expires_at": r.expires_at,
        "late_report": _late_report(r, r.device_id),
        "send_at": r.send_at,
        "not_before": r.not_before if scheduled else None,
        "hold_reason": r.hold_reason if scheduled else None,
        "cancel_requested_at": r.cancel_requested_at,
        "cancelled_at": r.cancelled_at,
        "cancel_reason": r.cancel_reason,
    }


class StatusQuery(msgspec.Struct, kw_only=True):
    """``?request_id=req_…``."""

    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class MessageListQuery(PageQuery, kw_only=True):
    """Filters of ``GET /v1/messages``."""

    status: (
        Literal["scheduled", "queued", "dispatched", "sent", "delivered", "failed", "cancelled"] | None
    ) = None
    since: datetime | None = None
    """RFC 3339 with an offset; compared with ``queued_at``."""
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    """Any number format; normalised like ``to`` of a send."""
    batch_id: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] | None = None
    """The items of one list send (``bat_…``)."""

    def __post_init__(self) -> None:
        if self.since is not None:
            if self.since.tzinfo is None:
                raise ValueError("`since` needs a time zone offset (e.g. Z)")
            try:
                self.since = self.since.astimezone(UTC)
            except OverflowError:
                raise ValueError("`since` is out of range") from None


async def send_sms(call: Call[SendRequest, None]) -> Accepted:
    """Validate, store (answer only after the commit) and queue one SMS."""
    assert call.principal is not None
    svc, spec = call.services, call.body
    key = idempotency_key(call)
    svc.queue.check(call.account_id)  # paused, stale or full: before anything else
    message = build_message(
        call.principal.account,
        MessageSpec(
            to=spec.to,
            text=spec.message,
            priority=PRIORITIES[spec.priority],
            ttl_seconds=spec.ttl_seconds,
            device_id=spec.device_id,
            sim_slot=spec.sim_slot,
            metadata=spec.metadata,
            send_at=spec.send_at,
        ),
        svc.pipeline,
        max_queue=svc.settings.max_queue_per_account,
    )
    async with svc.caps.admit(call.principal.account, message.to, opt_out=not spec.transactional) as hold:
        answer = await accept_message(
            svc.pool, svc.pipeline, message, idempotency_key=key, request_body=call.raw_body
        )
        if answer.request_id != message.id:
            hold.release()  # an idempotent replay: nothing new was stored
    return answer


async def message_status(call: Call[None, StatusQuery]) -> MessageStatus:
    """Status, device, attempts, failure reason and timeline of one message."""
    request_id = call.query.request_id
    pool = call.services.pool
    row = None
    if has_prefix(request_id, "req"):
        row = await store.message(pool, account_id=call.account_id, message_id=request_id)
    if row is None:
        raise ApiError("not_found", "no such message", {"request_id": request_id[:64]})
    history = [
        MessageAttempt(
            attempt=a.attempt,
            device_id=a.device_id,
            device_name=a.device_name,
            dispatched_at=a.dispatched_at,
            acked_at=a.acked_at,
            outcome=a.outcome,
            reason=a.reason,
            finished_at=a.finished_at,
            late_report=_late_report(a, a.device_id),
        )
        for a in await store.attempts_of(pool, message_id=request_id)
    ]
    return MessageStatus(**_view_fields(row), history=history)


async def list_messages(call: Call[None, MessageListQuery]) -> MessageList:
    """The account's messages, newest first, filtered by status, since and to."""
    assert call.principal is not None
    query = call.query
    to = query.to
    if to is not None:
        try:
            to = normalise_number(to, call.principal.account.default_region)
        except ApiError as exc:
            raise invalid_query("to", exc.details.get("fields", {}).get("to", "not a phone number")) from None
    rows = await store.list_messages(
        call.services.pool,
        account_id=call.account_id,
        before=query.cursor,
        limit=query.limit + 1,
        status=query.status,
        since=query.since,
        to=to,
        batch_id=query.batch_id,
    )
    items, next_cursor = page(
        rows, query.limit, lambda r: MessageView(**_view_fields(r)), lambda m: m.request_id
    )
    return MessageList(messages=items, next_cursor=next_cursor)


class CancelAnswer(msgspec.Struct, kw_only=True):
    """``DELETE /v1/messages/{request_id}``: 200 ``cancelled``; 202 ``dispatched`` while the relay
    holding it was asked to cancel it (the final status follows: ``cancelled``, or its reports)."""

    ok: bool = True
    request_id: str
    status: Literal["cancelled", "dispatched"]
    cancel_requested_at: datetime | None = None
    """When the relay was asked (202 only)."""


_FINAL = frozenset({"sent", "delivered", "failed"})
_CANCEL_ROUNDS = 3


def _cannot_cancel(request_id: str, reason: str, message: str, **details: Any) -> ApiError:
    return ApiError("conflict", message, {"reason": reason, "request_id": request_id, **details})


async def cancel_message(call: Call[None, None]) -> CancelAnswer | Reply:
    """Cancel a message that was not sent yet (see docs/api.md "Cancel a message")."""
    request_id = call.path["request_id"]
    pool, pipeline = call.services.pool, call.services.pipeline
    for _ in range(_CANCEL_ROUNDS):  # a message may move between two looks: look again
        row = None
        if has_prefix(request_id, "req"):
            row = await store.message(pool, account_id=call.account_id, message_id=request_id)
        if row is None:
            raise ApiError("not_found", "no such message", {"request_id": request_id[:64]})
        status = row.status
        if status == "cancelled":
            return CancelAnswer(request_id=request_id, status="cancelled")
        if status in _FINAL:
            raise _cannot_cancel(
                request_id, "too_late", f"too late to cancel: the message is {status}", status=status
            )
        if await pipeline.cancel_queued([request_id], "api"):
            return CancelAnswer(request_id=request_id, status="cancelled")
        outcome = await pipeline.request_relay_cancel(request_id, "api")
        if outcome == "requested":
            answer = CancelAnswer(
                request_id=request_id, status="dispatched", cancel_requested_at=pipeline.now()
            )
            return Reply(answer, status=202)
        if outcome == "relay_cannot_cancel":
            raise _cannot_cancel(
                request_id,
                "relay_cannot_cancel",
                "the relay holding the message speaks protocol v1, which has no cancel",
                device_id=row.device_id,
            )
        if outcome == "relay_offline":
            raise _cannot_cancel(
                request_id,
                "relay_offline",
                "the relay holding the message is offline; retry when it is back",
                device_id=row.device_id,
            )
    raise _cannot_cancel(request_id, "busy", "the message is changing state; retry")
