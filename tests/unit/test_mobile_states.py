"""The SMSGate snapshot reading (pure): furthest state wins, failure texts map to reasons, the
app's dates parse; system:ping payloads become telemetry; the v1.1 inbound frame's session rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from gateway.fleet.devices import LiveTelemetry
from gateway.fleet.inbound import keyword
from gateway.mobile.shapes import RecipientState, StateReport
from gateway.mobile.states import failure_reason, outcome, parse_app_time
from gateway.mobile.telemetry import apply_ping
from protocol import InboundReceived, ProtocolVersion, ProtocolViolation, RelaySession

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def report(state: str, *recipients: tuple[str, str | None], **states: str) -> StateReport:
    return StateReport(
        id="req_1",
        state=state,  # type: ignore[arg-type]
        recipients=[RecipientState(phoneNumber="+1", state=s, error=e) for s, e in recipients],  # type: ignore[arg-type]
        states=states,  # type: ignore[arg-type]
    )


def test_the_furthest_state_of_a_snapshot_wins() -> None:
    """Pending and Processed ack; Sent sends; Delivered sends and delivers; a stale message state
    under a further recipient state changes nothing."""
    assert outcome(report("Pending")).acked and not outcome(report("Pending")).sent
    processed = outcome(report("Processed", ("Processed", None)))
    assert processed.acked and not processed.sent and not processed.failed
    sent = outcome(report("Processed", ("Sent", None), Sent="2026-12-01T15:00:00.123+05:00"))
    assert sent.sent and sent.sent_at == datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
    delivered = outcome(report("Delivered"))
    assert delivered.sent and delivered.delivered and delivered.sent_at is None
    cancelled = outcome(report("Cancelled"))
    assert cancelled.cancelled and not cancelled.acked and not cancelled.sent


def test_failures_map_their_text_to_reasons() -> None:
    """Android's RESULT_ERROR_* names become our reasons; a failure after Sent stays final; unknown is smsgate_error."""
    failed = outcome(report("Failed", ("Failed", "Send result: RESULT_ERROR_RADIO_OFF")))
    assert (
        failed.failed
        and failed.reason == "radio_off"
        and failed.detail == "Send result: RESULT_ERROR_RADIO_OFF"
    )
    assert not failed.sent
    after_sent = outcome(
        report("Failed", ("Failed", "Delivery result from SC: 64"), Sent="2026-12-01T10:00:00Z")
    )
    assert after_sent.sent and after_sent.reason == "delivery_failed"
    assert failure_reason("TTL expired") == "expired"
    assert failure_reason("RESULT_ERROR_NO_SERVICE") == "no_service"
    assert failure_reason("RESULT_ERROR_LIMIT_EXCEEDED") == "limit_exceeded"
    assert failure_reason("weird") == failure_reason(None) == "smsgate_error"


def test_app_times_parse_and_nonsense_does_not() -> None:
    """The app's millisecond-offset format and RFC 3339 parse; naive, junk and huge strings give None."""
    assert parse_app_time("2026-07-14T08:13:49.123+07:00") == datetime(
        2026, 7, 14, 8, 13, 49, 123000, tzinfo=timezone(timedelta(hours=7))
    )
    assert parse_app_time("2026-07-14T08:13:49Z") is not None
    for junk in (None, "", "yesterday", "2026-07-14T08:13:49", "9" * 100):
        assert parse_app_time(junk) is None


def test_system_ping_becomes_telemetry() -> None:
    """Battery, charging, network and version are read; malformed checks leave fields alone."""
    t = LiveTelemetry(battery=10, network="wifi")
    payload = {
        "health": {
            "version": "1.68.0",
            "checks": {
                "battery:level": {"observedValue": 91},
                "battery:charging": {"observedValue": 0},
                "connection:status": {"observedValue": 1},
                "connection:transport": {"observedValue": 1},
            },
        }
    }
    apply_ping(t, payload, NOW)
    assert (t.battery, t.charging, t.network, t.app_version, t.last_seen_at) == (
        91,
        False,
        "cellular",
        "1.68.0",
        NOW,
    )
    apply_ping(
        t,
        {
            "health": {
                "checks": {
                    "battery:level": {"observedValue": "full"},
                    "connection:status": {"observedValue": 0},
                }
            }
        },
        NOW,
    )
    assert t.battery == 91 and t.network == "none"
    apply_ping(t, {"health": [1, 2]}, NOW)
    apply_ping(t, {"health": {"checks": {"battery:level": {"observedValue": 10**30}}}}, NOW)
    assert t.battery == 91


def test_keywords_ignore_case_space_and_apostrophe_forms() -> None:
    """STOP, 'stop.' and Uzbek to\u02bbxtat with any apostrophe read the same."""
    assert keyword("  stop. ") == "STOP" and keyword("Start!") == "START"
    assert keyword("to\u02bbxtat") == keyword("to\u2019xtat") == keyword("TO'XTAT")
    assert keyword("please stop") == "PLEASE STOP"


def test_inbound_frame_needs_hello_and_valid_fields() -> None:
    """An inbound frame after hello becomes an event and is acked on request; before hello it is
    out of order; in a v1 session it is an unknown type."""
    session = RelaySession(device_id="dev_1", now=0.0, version=ProtocolVersion.V1_1)
    frame = json.dumps(
        {
            "type": "inbound",
            "id": "in1",
            "from": "+998901234567",
            "text": "hi",
            "received_at": "2026-12-01T10:00:00Z",
        }
    )
    session.receive_frame(frame, 1.0)
    (violation,) = session.events_received()
    assert isinstance(violation, ProtocolViolation) and violation.code == "out_of_order"
    hello = {"type": "hello", "protocol": 1, "app_version": "1", "sims": [], "queue_length": 0}
    v1 = RelaySession(device_id="dev_1", now=0.0)
    v1.receive_frame(json.dumps(hello), 1.0)
    v1.events_received()
    v1.receive_frame(frame, 2.0)
    (violation,) = v1.events_received()
    assert isinstance(violation, ProtocolViolation) and violation.code == "unknown_type"
    session = RelaySession(device_id="dev_1", now=0.0, version=ProtocolVersion.V1_1)
    session.receive_frame(json.dumps(hello), 1.0)
    session.events_received()
    session.data_to_send()
    session.receive_frame(frame, 2.0)
    (event,) = session.events_received()
    assert isinstance(event, InboundReceived) and event.frame.from_ == "+998901234567"
    session.ack_inbound("in1")
    assert [json.loads(d) for d in session.data_to_send()] == [{"type": "inbound_ack", "id": "in1"}]
