"""The SMSGate app's wire shapes (see docs/phones.md and the contract notes it cites).

Field names are the app's (camelCase). Requests are lenient where the app is (unknown fields
ignored, optional fields absent rather than null) and bounded everywhere: every list and string
has a limit, so a hostile body is a ``validation_error``, never a 500 or a large allocation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "DeviceSummary",
    "MobileDevice",
    "MobileMessage",
    "MobileSettings",
    "MobileState",
    "ReceivedSms",
    "Registered",
    "Registration",
    "RegistrationUpdate",
    "SimCard",
    "StateReport",
    "TextMessage",
    "WebhookDelivery",
    "WebhookTarget",
]

Short = Annotated[str, msgspec.Meta(max_length=128)]
MobileState = Literal["Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelling", "Cancelled"]


class SimCard(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One SIM as the app lists it (numbers masked by the app to their last 4 characters)."""

    slotIndex: Annotated[int, msgspec.Meta(ge=0, le=7)] | None = None
    simNumber: Annotated[int, msgspec.Meta(ge=1, le=8)]
    phoneNumber: Short | None = None
    carrierName: Short | None = None
    iccid: Short | None = None


SimCards = Annotated[list[SimCard], msgspec.Meta(max_length=4)]


class Registration(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Body of ``POST /device``."""

    name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    pushToken: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    simCards: SimCards | None = None


class Registered(msgspec.Struct, kw_only=True):
    """Answer of ``POST /device``: ``token`` is the phone's credential from now on; ``login`` is
    the device id (the app shows it); no password exists (relaygate has no SMSGate user API)."""

    id: str
    token: str
    login: str


class RegistrationUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Body of ``PATCH /device``."""

    id: Annotated[str, msgspec.Meta(max_length=64)]
    pushToken: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    simCards: SimCards | None = None


class DeviceSummary(msgspec.Struct, kw_only=True):
    """The device part of ``GET /device``."""

    id: str
    name: str


class MobileDevice(msgspec.Struct, kw_only=True):
    """Answer of ``GET /device``: the app shows ``externalIp``."""

    externalIp: str
    device: DeviceSummary


class GatewaySection(msgspec.Struct, kw_only=True):
    """``gateway`` of ``GET /settings``."""

    notification_channel: Literal["SSE_ONLY"] = "SSE_ONLY"


class MessagesSection(msgspec.Struct, kw_only=True):
    """``messages`` of ``GET /settings``: the phone's own sending limit (the scheduler keeps it too)."""

    limit_period: Literal["PerMinute"] = "PerMinute"
    limit_value: int


class PingSection(msgspec.Struct, kw_only=True):
    """``ping`` of ``GET /settings``: how often the phone posts ``system:ping``."""

    interval_seconds: int


class WebhooksSection(msgspec.Struct, kw_only=True):
    """``webhooks`` of ``GET /settings``."""

    signing_key: str
    retry_count: int = 15


class MobileSettings(msgspec.Struct, kw_only=True):
    """Answer of ``GET /settings`` (the app imports the sections it knows)."""

    gateway: GatewaySection
    messages: MessagesSection
    ping: PingSection
    webhooks: WebhooksSection


class TextMessage(msgspec.Struct, kw_only=True):
    """The text of a message to send."""

    text: str


class MobileMessage(msgspec.Struct, kw_only=True):
    """One message of ``GET /message``; the app keys its local copy by ``id``."""

    id: str
    textMessage: TextMessage
    phoneNumbers: list[str]
    simNumber: int | None
    withDeliveryReport: bool
    isEncrypted: bool
    validUntil: str
    priority: int
    state: Literal["Pending", "Cancelling"]
    createdAt: str


class RecipientState(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One recipient of a state report."""

    phoneNumber: Annotated[str, msgspec.Meta(max_length=64)] = ""
    state: MobileState
    error: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


class StateReport(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One item of ``PATCH /message``: the app's full snapshot of a message, sent again and again."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    state: MobileState
    recipients: Annotated[list[RecipientState], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )
    states: Annotated[dict[MobileState, str], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=dict
    )


StateReports = Annotated[list[StateReport], msgspec.Meta(max_length=100)]


class WebhookTarget(msgspec.Struct, kw_only=True):
    """One item of ``GET /webhooks``."""

    id: str
    url: str
    event: str


class WebhookDelivery(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """A webhook the phone posts to ``/inbound/{device_id}``; ``payload`` depends on ``event``."""

    event: Annotated[str, msgspec.Meta(max_length=64)]
    id: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    webhookId: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    deviceId: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class ReceivedSms(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """``payload`` of an ``sms:received`` webhook."""

    messageId: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    """The app's id (a hash of the content: two equal texts share it)."""
    message: Annotated[str, msgspec.Meta(max_length=4000)]
    sender: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    phoneNumber: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """Deprecated copy of ``sender``."""
    simNumber: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None
    receivedAt: Annotated[str, msgspec.Meta(max_length=40)] | None = None
