"""Events as types: one builder for outbox rows that refuses data of the wrong type, and the
catalogue's bodies decode as the declared union."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from gateway.events import (
    MessageEventData,
    MessageLateReport,
    WebhookEvent,
    WebhookTestData,
    event_row,
    event_types,
)
from gateway.webhooks.signing import EVENT_TYPES


def test_event_row_checks_the_data_type() -> None:
    """``event_row`` keeps declared data (the jsonb codec writes it) and refuses another event's data."""
    data = WebhookTestData(webhook_id="whk_x", message="hi")
    event_id, account_id, event_type, body = event_row("acc_x", "webhook.test", data)
    assert event_id.startswith("evt_") and account_id == "acc_x" and event_type == "webhook.test"
    assert json.loads(msgspec.json.encode(body)) == {"webhook_id": "whk_x", "message": "hi"}
    with pytest.raises(ValueError, match=r"not the data of 'message\.sent'"):
        event_row("acc_x", "message.sent", data)
    with pytest.raises(ValueError):
        event_row("acc_x", "no.such_event", data)


def test_catalogue_and_union_agree() -> None:
    """Every declared type is a webhook event type, and a late report body decodes strictly."""
    assert sorted(event_types()) == sorted(EVENT_TYPES)
    body = {
        "type": "message.late_report",
        "timestamp": "2026-11-23T10:00:00Z",
        "data": {
            "request_id": "req_x", "status": "failed", "to": "+998901234567", "device_id": "dev_x",
            "device_name": "r", "attempts": 1, "failure_reason": "relay_timeout", "failure_reason_detail": None,
            "metadata": None, "kind": "sms",
            "late_report": {"status": "delivered", "at": "2026-11-23T10:05:00Z", "device_id": "dev_x"},
        },
    }  # fmt: skip
    event = msgspec.json.decode(json.dumps(body), type=WebhookEvent)
    assert isinstance(event, MessageLateReport) and isinstance(event.data, MessageEventData)
    assert event.data.late_report is not None and event.data.late_report.at == datetime(
        2026, 11, 23, 10, 5, tzinfo=UTC
    )
    body["data"]["surprise"] = 1  # type: ignore[index]
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps(body), type=WebhookEvent)
