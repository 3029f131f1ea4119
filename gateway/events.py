"""Every webhook event as a type: the body relaygate POSTs is one of :data:`WebhookEvent`,
tagged by ``type``. The catalogue in docs/api.md and the OpenAPI ``webhooks`` section come from
these Structs; the tests decode every delivery they receive with them (unknown fields refused),
so a producer that drifts from its declared shape fails a test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from gateway.ids import new_id
from store.outbox import EventRow, insert_events

__all__ = [
    "BatchCompletedData",
    "BatchCounts",
    "DeviceEventData",
    "InboundEventData",
    "LateReportData",
    "MessageEventData",
    "OptOutEventData",
    "OtpVerifiedData",
    "WebhookEvent",
    "WebhookTestData",
    "emit",
    "event_row",
    "event_types",
]


class LateReportData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a relay reported after the gateway had failed the message."""

    status: Literal["sent", "delivered"]
    at: datetime
    """When the gateway stored the late report."""
    device_id: str


class MessageEventData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of the ``message.*`` events."""

    request_id: str
    status: Literal["sent", "delivered", "failed", "cancelled"]
    to: str
    device_id: str | None
    device_name: str | None
    attempts: int
    failure_reason: str | None
    """Set on ``message.failed`` only (and the reason of ``message.cancelled``)."""
    failure_reason_detail: str | None = None
    """For people: e.g. ``last attempt: radio_off on dev_…`` (``message.failed`` only)."""
    metadata: dict[str, Any] | None
    kind: Literal["sms", "otp", "list"]
    cancel_reason: str | None = None
    """Set on ``message.cancelled`` only: ``api`` (``DELETE /v1/messages/{request_id}``),
    ``otp_replaced`` (a newer code for the same number and purpose), …"""
    late_report: LateReportData | None = None
    """Set on ``message.late_report`` only (whose ``status`` stays ``failed``)."""


class OtpVerifiedData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``otp.verified``."""

    otp_id: str
    to: str
    purpose: str
    request_id: str
    verified_at: datetime


class DeviceEventData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``device.online`` and ``device.offline``."""

    device_id: str
    device_name: str
    last_seen_at: datetime | None
    battery: int | None
    signal: int | None


class InboundEventData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``message.received``: an SMS one of the account's relays received."""

    inbound_id: str
    from_: str = msgspec.field(name="from")
    """The sender as the phone got it (E.164 when it could be read as a number)."""
    text: str
    device_id: str
    sim_slot: int | None
    received_at: datetime
    opt_action: Literal["opted_out", "opted_in"] | None
    """Set when the text was an opt-out (STOP…) or opt-in (START) keyword."""
    in_reply_to: str | None = None
    """The ``request_id`` of the latest message the account sent to that number (the thread)."""


class OptOutEventData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``recipient.opted_out`` / ``recipient.opted_in``."""

    phone: str
    opted_out: bool
    keyword: str
    """The word that did it, as received (upper-cased)."""
    inbound_id: str
    recipient_id: str


class WebhookTestData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``webhook.test``."""

    webhook_id: str
    message: str


class BatchCounts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Items of a batch per status."""

    queued: int
    dispatched: int
    sent: int
    delivered: int
    failed: int
    cancelled: int
    scheduled: int = 0
    """Items of a list queued with ``send_at`` that wait for it."""


class BatchCompletedData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``data`` of ``batch.completed``."""

    batch_id: str
    list_id: str
    total: int
    counts: BatchCounts
    """Final counts: ``queued`` and ``dispatched`` are 0."""
    created_at: datetime
    completed_at: datetime


class _Event(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    timestamp: datetime
    """When the event happened (the outbox row's time)."""


class MessageSent(_Event, tag="message.sent", kw_only=True):
    """A relay reported the SMS sent (the radio accepted it)."""

    data: MessageEventData


class MessageDelivered(_Event, tag="message.delivered", kw_only=True):
    """The delivery report arrived."""

    data: MessageEventData


class MessageFailed(_Event, tag="message.failed", kw_only=True):
    """Final failure: a relay error after retries, ``expired``, ``no_device``, ``relay_timeout``, …"""

    data: MessageEventData


class MessageCancelled(_Event, tag="message.cancelled", kw_only=True):
    """The message was cancelled before a relay sent it: by the API while scheduled or queued,
    or by its relay confirming a cancel (protocol v1.1); or a newer OTP replaced its code."""

    data: MessageEventData


class MessageLateReport(_Event, tag="message.late_report", kw_only=True):
    """A relay reported ``sent``/``delivered`` after the message had failed; it stays failed."""

    data: MessageEventData


class BatchCompleted(_Event, tag="batch.completed", kw_only=True):
    """Every item of a list send is final (sent, delivered, failed or cancelled); once per batch."""

    data: BatchCompletedData


class OtpVerified(_Event, tag="otp.verified", kw_only=True):
    """An OTP was verified successfully."""

    data: OtpVerifiedData


class DeviceOnline(_Event, tag="device.online", kw_only=True):
    """A relay connected and said hello."""

    data: DeviceEventData


class DeviceOffline(_Event, tag="device.offline", kw_only=True):
    """A relay went away."""

    data: DeviceEventData


class MessageReceived(_Event, tag="message.received", kw_only=True):
    """A relay received an SMS for the account (stored; ``GET /v1/inbound`` lists it)."""

    data: InboundEventData


class RecipientOptedOut(_Event, tag="recipient.opted_out", kw_only=True):
    """An inbound STOP (or a configured local word) opted the number out of list sends."""

    data: OptOutEventData


class RecipientOptedIn(_Event, tag="recipient.opted_in", kw_only=True):
    """An inbound START (or a configured local word) opted the number back in."""

    data: OptOutEventData


class WebhookTest(_Event, tag="webhook.test", kw_only=True):
    """``POST /v1/webhooks/{id}/test`` was called."""

    data: WebhookTestData


WebhookEvent = (
    MessageSent
    | MessageDelivered
    | MessageFailed
    | MessageCancelled
    | MessageLateReport
    | BatchCompleted
    | OtpVerified
    | DeviceOnline
    | DeviceOffline
    | MessageReceived
    | RecipientOptedOut
    | RecipientOptedIn
    | WebhookTest
)
"""The body of every webhook request."""

EVENT_STRUCTS: tuple[type[_Event], ...] = (
    MessageSent,
    MessageDelivered,
    MessageFailed,
    MessageCancelled,
    MessageLateReport,
    BatchCompleted,
    OtpVerified,
    DeviceOnline,
    DeviceOffline,
    MessageReceived,
    RecipientOptedOut,
    RecipientOptedIn,
    WebhookTest,
)


def event_types() -> list[str]:
    """The ``type`` of every event, in catalogue order."""
    return [str(s.__struct_config__.tag) for s in EVENT_STRUCTS]


def catalogue_markdown() -> str:
    """The events table of docs/api.md, made from the Structs (a test keeps the doc in sync)."""
    rows = ["| type | when | `data` fields |", "|---|---|---|"]
    for s in EVENT_STRUCTS:
        data = _DATA_OF[str(s.__struct_config__.tag)]
        fields = ", ".join(f"`{f.encode_name}`" for f in msgspec.structs.fields(data))
        when = " ".join((s.__doc__ or "").split()).replace("``", "`")
        rows.append(f"| `{s.__struct_config__.tag}` | {when} | {fields} |")
    return "\n".join(rows) + "\n"


EventData = (
    MessageEventData
    | OtpVerifiedData
    | DeviceEventData
    | InboundEventData
    | OptOutEventData
    | WebhookTestData
    | BatchCompletedData
)
_DATA_OF: dict[str, type[Any]] = {
    str(s.__struct_config__.tag): next(f.type for f in msgspec.structs.fields(s) if f.name == "data")
    for s in EVENT_STRUCTS
}


def event_row(account_id: str, event_type: str, data: EventData) -> EventRow:
    """``(id, account_id, type, data)`` of a new outbox row, the one way an event is built;
    ``ValueError`` when ``data`` is not the declared data of ``event_type``."""
    if _DATA_OF.get(event_type) is not type(data):
        raise ValueError(f"{type(data).__name__} is not the data of {event_type!r}")
    return new_id("evt"), account_id, event_type, data


async def emit(conn: Any, account_id: str, event_type: str, data: EventData) -> str:
    """Write one event to the outbox in the caller's transaction; return its id."""
    row = event_row(account_id, event_type, data)
    await insert_events(conn, [row])
    return row[0]
