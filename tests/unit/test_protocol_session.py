"""Unit tests of RelaySession, the gateway-side state machine of one relay connection.

Pure: no sockets, no event loop; time is a float the tests advance.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_FRAME_BYTES,
    CloseCode,
    CommandAcked,
    Error,
    ErrorCode,
    GatewayFrame,
    HeartbeatReceived,
    HeartbeatTimedOut,
    HelloReceived,
    ProtocolStateError,
    ProtocolViolation,
    RelaySession,
    ReportAck,
    ReportReceived,
    Send,
    SessionState,
    Welcome,
    decode_gateway_frame,
)

NOW = 1_773_491_400.0  # 2026-03-14T12:30:00Z
EXPIRES = datetime(2026, 3, 14, 13, 30, tzinfo=UTC)
HELLO = json.dumps({"type": "hello", "protocol": 1, "app_version": "1.0", "sims": [], "queue_length": 0})
HEARTBEAT = json.dumps({"type": "heartbeat", "network": "wifi", "sims": [], "queue_length": 0})


def frame(**fields: Any) -> str:
    """Encode a relay frame given as keyword fields."""
    return json.dumps(fields)


def sent(session: RelaySession) -> list[GatewayFrame]:
    """Drain and decode what the session wants to write."""
    return [decode_gateway_frame(data) for data in session.data_to_send()]


def sent_errors(session: RelaySession) -> list[Error]:
    """Drain the output and keep only the error frames."""
    return [f for f in sent(session) if isinstance(f, Error)]


def open_session(**options: Any) -> RelaySession:
    """A session that received a hello, with its output and events drained."""
    session = RelaySession(device_id="dev_1", now=NOW, **options)
    session.receive_frame(HELLO, NOW)
    session.data_to_send()
    session.events_received()
    return session


def send(session: RelaySession, command_id: str) -> None:
    """Queue a send command for a fixed recipient and drain it."""
    session.send_message(id=command_id, to="+33612345678", message="hi", sim_slot=None, expires_at=EXPIRES)
    session.data_to_send()


def test_hello_opens_session_and_queues_welcome() -> None:
    """A valid hello moves to OPEN, emits HelloReceived and queues a complete welcome."""
    session = RelaySession(device_id="dev_1", now=NOW, heartbeat_interval=20, max_in_flight=4)
    session.receive_frame(HELLO, NOW + 1.5)
    assert session.state is SessionState.OPEN
    [event] = session.events_received()
    assert isinstance(event, HelloReceived)
    assert event.frame.app_version == "1.0"
    assert sent(session) == [
        Welcome(
            device_id="dev_1",
            heartbeat_interval_seconds=20,
            max_in_flight=4,
            max_frame_bytes=MAX_FRAME_BYTES,
            server_time=datetime(2026, 3, 14, 12, 30, 1, 500_000, tzinfo=UTC),
        )
    ]
    assert session.close_code is None


def test_new_session_awaits_hello_and_writes_nothing() -> None:
    """A fresh session awaits hello, has no output, and its deadline is the heartbeat timeout."""
    session = RelaySession(device_id="dev_1", now=NOW)
    assert session.state is SessionState.AWAITING_HELLO
    assert (session.data_to_send(), session.events_received()) == ([], [])
    assert session.next_deadline() == NOW + 75


def test_events_and_output_are_drained() -> None:
    """events_received and data_to_send return each item once."""
    session = RelaySession(device_id="dev_1", now=NOW)
    session.receive_frame(HELLO, NOW)
    assert len(session.events_received()) == 1
    assert len(session.data_to_send()) == 1
    assert session.events_received() == []
    assert session.data_to_send() == []


@pytest.mark.parametrize("first", [HEARTBEAT, frame(type="ack", id="req_1")])
def test_frame_before_hello_is_out_of_order_and_fatal(first: str) -> None:
    """A valid non-hello first frame gets out_of_order and closes with 1008."""
    session = RelaySession(device_id="dev_1", now=NOW)
    session.receive_frame(first, NOW)
    [error] = sent_errors(session)
    assert error.code == "out_of_order"
    assert session.state is SessionState.CLOSING
    assert session.close_code is CloseCode.PROTOCOL_VIOLATION
    assert isinstance(session.events_received()[0], ProtocolViolation)


def test_invalid_first_frame_is_fatal() -> None:
    """An undecodable first frame gets its error code and closes with 1008: no session without hello."""
    session = RelaySession(device_id="dev_1", now=NOW)
    session.receive_frame("{oops", NOW)
    assert [e.code for e in sent_errors(session)] == ["malformed_frame"]
    assert session.close_code is CloseCode.PROTOCOL_VIOLATION


def test_second_hello_is_out_of_order_but_not_fatal() -> None:
    """A second hello gets out_of_order and the session stays OPEN."""
    session = open_session()
    session.receive_frame(HELLO, NOW + 1)
    assert [e.code for e in sent_errors(session)] == ["out_of_order"]
    assert session.state is SessionState.OPEN
    assert session.events_received() == [
        ProtocolViolation("out_of_order", "hello was already received in this session")
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{not json", "malformed_frame"),
        ("[1,2,3]", "malformed_frame"),
        (b'{"type":"heartbeat"}', "malformed_frame"),
        (frame(type="reboot"), "unknown_type"),
        (frame(type="heartbeat", network="wifi", sims=[]), "invalid_field"),
        (frame(type="heartbeat", battery=101, network="wifi", sims=[], queue_length=0), "invalid_field"),
        (frame(type="report", id="req_1", status="failed", at="2026-03-14T12:30:00Z"), "invalid_field"),
    ],
)
def test_bad_frame_gets_error_and_session_stays_open(data: str | bytes, code: str) -> None:
    """Malformed, binary, unknown-type and invalid frames get their error frame; the session stays OPEN."""
    session = open_session()
    session.receive_frame(data, NOW + 1)
    [error] = sent_errors(session)
    assert error.code == code
    assert session.state is SessionState.OPEN
    assert session.error_count == 1
    [event] = session.events_received()
    assert event == ProtocolViolation(code, error.message)


def test_heartbeat_emits_telemetry_event() -> None:
    """A heartbeat emits HeartbeatReceived with its fields and writes nothing."""
    session = open_session()
    session.receive_frame(
        frame(type="heartbeat", battery=80, signal=2, network="cellular", sims=[], queue_length=1), NOW
    )
    [event] = session.events_received()
    assert isinstance(event, HeartbeatReceived)
    assert (event.frame.battery, event.frame.signal, event.frame.queue_length) == (80, 2, 1)
    assert session.data_to_send() == []


def test_unknown_extra_fields_are_ignored_by_session() -> None:
    """A frame with unknown fields is processed as if they were absent."""
    session = open_session()
    session.receive_frame(frame(type="heartbeat", network="wifi", sims=[], queue_length=0, thermal="ok"), NOW)
    assert isinstance(session.events_received()[0], HeartbeatReceived)
    assert session.data_to_send() == []


def test_send_message_queues_send_and_tracks_unacked() -> None:
    """send_message writes a send frame and tracks its id until acked."""
    session = open_session()
    session.send_message(id="req_1", to="+33612345678", message="code 1", sim_slot=1, expires_at=EXPIRES)
    assert sent(session) == [
        Send(id="req_1", to="+33612345678", message="code 1", sim_slot=1, expires_at=EXPIRES)
    ]
    assert session.unacked == frozenset({"req_1"})
    session.receive_frame(frame(type="ack", id="req_1"), NOW + 1)
    assert session.events_received() == [CommandAcked("req_1")]
    assert session.unacked == frozenset()


def test_duplicate_ack_is_silently_ignored() -> None:
    """A second ack for an already-acked id emits nothing and writes nothing."""
    session = open_session()
    send(session, "req_1")
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    session.events_received()
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    assert session.events_received() == []
    assert session.data_to_send() == []
    assert session.error_count == 0


def test_ack_for_unknown_id_is_unknown_id() -> None:
    """An ack for an id never sent in this session gets unknown_id with the id as ref."""
    session = open_session()
    session.receive_frame(frame(type="ack", id="req_404"), NOW)
    assert sent_errors(session) == [
        Error(code="unknown_id", message="ack for a command not sent in this session", ref="req_404")
    ]
    assert session.state is SessionState.OPEN


def test_report_for_unknown_id_is_accepted() -> None:
    """A report for an id from an earlier session is delivered as ReportReceived, not rejected."""
    session = open_session()
    session.receive_frame(
        frame(type="report", id="req_old", status="delivered", at="2026-03-14T10:00:00Z"), NOW
    )
    [event] = session.events_received()
    assert isinstance(event, ReportReceived)
    assert event.frame.id == "req_old"
    assert session.data_to_send() == []


def test_report_before_ack_counts_as_ack() -> None:
    """A report for an unacked command acks it first; the late ack is then a harmless duplicate."""
    session = open_session()
    send(session, "req_1")
    session.receive_frame(frame(type="report", id="req_1", status="sent", at="2026-03-14T12:30:05Z"), NOW)
    events = session.events_received()
    assert events[0] == CommandAcked("req_1")
    assert isinstance(events[1], ReportReceived)
    assert session.unacked == frozenset()
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    assert session.events_received() == []
    assert session.data_to_send() == []


def test_resending_an_acked_id_makes_it_unacked_again() -> None:
    """A retransmitted send is tracked again and its next ack is reported again."""
    session = open_session()
    send(session, "req_1")
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    send(session, "req_1")
    assert session.unacked == frozenset({"req_1"})
    session.events_received()
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    assert session.events_received() == [CommandAcked("req_1")]


def test_ack_report_queues_report_ack() -> None:
    """ack_report writes a report_ack with the id and status."""
    session = open_session()
    session.ack_report("req_1", "delivered")
    assert sent(session) == [ReportAck(id="req_1", status="delivered")]


def test_ack_report_after_close_is_a_no_op_and_before_hello_raises() -> None:
    """ack_report does nothing once CLOSING and raises ProtocolStateError before hello."""
    session = open_session()
    session.close(CloseCode.GOING_AWAY, "shutdown")
    session.ack_report("req_1", "sent")
    assert session.data_to_send() == []
    with pytest.raises(ProtocolStateError):
        RelaySession(device_id="dev_1", now=NOW).ack_report("req_1", "sent")


def test_send_message_requires_open_session() -> None:
    """send_message raises ProtocolStateError before hello and after a close."""
    fresh = RelaySession(device_id="dev_1", now=NOW)
    with pytest.raises(ProtocolStateError):
        send(fresh, "req_1")
    closed = open_session()
    closed.close(CloseCode.SESSION_REPLACED, "replaced")
    with pytest.raises(ProtocolStateError):
        send(closed, "req_1")
    assert fresh.unacked == closed.unacked == frozenset()


def test_send_message_rejects_naive_expiry_and_bad_id() -> None:
    """send_message refuses a naive expires_at and an id outside 1..64 chars."""
    session = open_session()
    with pytest.raises(ValueError, match="timezone"):
        session.send_message(id="r", to="+1555", message="m", sim_slot=None, expires_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"1\.\.64"):
        session.send_message(id="r" * 65, to="+1555", message="m", sim_slot=None, expires_at=EXPIRES)
    assert session.data_to_send() == []


def test_heartbeat_timeout_closes_with_4002() -> None:
    """Silence until next_deadline emits HeartbeatTimedOut and closes 4002; earlier checks do nothing."""
    session = open_session(heartbeat_interval=30)
    assert session.heartbeat_timeout == 75
    assert session.next_deadline() == NOW + 75
    session.check_timeouts(NOW + 74.9)
    assert session.events_received() == []
    assert session.state is SessionState.OPEN
    session.check_timeouts(session.next_deadline())
    assert session.events_received() == [HeartbeatTimedOut()]
    assert session.close_code is CloseCode.HEARTBEAT_TIMEOUT
    assert session.next_deadline() == float("inf")


def test_any_frame_refreshes_liveness() -> None:
    """Every received frame, even an invalid one, pushes the heartbeat deadline back."""
    session = open_session(heartbeat_timeout=10)
    session.receive_frame("garbage", NOW + 8)
    assert session.next_deadline() == NOW + 18
    session.receive_frame(HEARTBEAT, NOW + 15)
    session.check_timeouts(NOW + 20)
    assert session.state is SessionState.OPEN


def test_timeout_applies_while_awaiting_hello() -> None:
    """A connection that never says hello times out too."""
    session = RelaySession(device_id="dev_1", now=NOW, heartbeat_timeout=5)
    session.check_timeouts(NOW + 5)
    assert session.close_code is CloseCode.HEARTBEAT_TIMEOUT


def test_flood_gets_too_many_frames_and_4008() -> None:
    """Beyond the burst, a frame gets too_many_frames and the session closes 4008."""
    session = open_session(flood_rate=50, flood_burst=200)
    for _ in range(199):  # the hello used one token
        session.receive_frame(HEARTBEAT, NOW)
    assert session.state is SessionState.OPEN
    session.events_received()
    session.receive_frame(HEARTBEAT, NOW)
    assert [e.code for e in sent_errors(session)] == ["too_many_frames"]
    assert session.close_code is CloseCode.TOO_MANY_FRAMES
    assert isinstance(session.events_received()[0], ProtocolViolation)


def test_flood_bucket_refills_at_the_sustained_rate() -> None:
    """After draining the burst, the bucket refills at flood_rate tokens per second, no faster."""
    session = open_session(flood_rate=10, flood_burst=5)
    for _ in range(4):  # the hello used one token
        session.receive_frame(HEARTBEAT, NOW)
    for _ in range(5):  # half a second at 10/s refills 5 tokens
        session.receive_frame(HEARTBEAT, NOW + 0.5)
    assert session.state is SessionState.OPEN
    session.receive_frame(HEARTBEAT, NOW + 0.5)
    assert session.close_code is CloseCode.TOO_MANY_FRAMES


def test_max_errors_closes_with_1008() -> None:
    """The max_errors-th error frame is followed by a 1008 close; fewer keep the session open."""
    session = open_session(max_errors=10)
    for _ in range(9):
        session.receive_frame("{bad", NOW)
    assert session.state is SessionState.OPEN
    session.receive_frame("{bad", NOW)
    assert len(sent_errors(session)) == 10
    assert session.close_code is CloseCode.PROTOCOL_VIOLATION
    assert session.close_reason == "10 protocol errors"


@pytest.mark.parametrize(
    "data", ["x" * (MAX_FRAME_BYTES + 1), "é" * (MAX_FRAME_BYTES // 2 + 1), b"\0" * 70_000]
)
def test_oversize_frame_closes_with_1009(data: str | bytes) -> None:
    """A frame over MAX_FRAME_BYTES of UTF-8 closes the session with 1009 without an error frame."""
    session = open_session()
    session.receive_frame(data, NOW)
    assert session.close_code is CloseCode.MESSAGE_TOO_BIG
    assert session.data_to_send() == []
    assert session.events_received()[0].__class__ is ProtocolViolation


def test_frame_at_exactly_max_size_is_accepted() -> None:
    """A frame of exactly MAX_FRAME_BYTES is processed normally."""
    session = open_session()
    padding = MAX_FRAME_BYTES - len(HEARTBEAT) - len(',"pad":""')
    data = HEARTBEAT[:-1] + ',"pad":"' + "p" * padding + '"}'
    assert len(data.encode()) == MAX_FRAME_BYTES
    session.receive_frame(data, NOW)
    assert isinstance(session.events_received()[0], HeartbeatReceived)


def test_closing_session_ignores_frames_and_first_close_wins() -> None:
    """Once CLOSING, frames are ignored and a later close() does not change the code."""
    session = open_session()
    send(session, "req_1")
    session.close(CloseCode.SESSION_REPLACED, "replaced by a newer connection")
    session.close(CloseCode.GOING_AWAY, "shutdown")
    session.receive_frame(frame(type="ack", id="req_1"), NOW)
    session.check_timeouts(NOW + 1000)
    assert session.events_received() == []
    assert session.data_to_send() == []
    assert (session.close_code, session.close_reason) == (
        CloseCode.SESSION_REPLACED,
        "replaced by a newer connection",
    )
    assert session.unacked == frozenset({"req_1"})


def test_constructor_rejects_nonsense_limits() -> None:
    """Non-positive intervals and limits are refused at construction."""
    with pytest.raises(ValueError):
        RelaySession(device_id="dev_1", now=NOW, heartbeat_interval=0)
    with pytest.raises(ValueError):
        RelaySession(device_id="dev_1", now=NOW, flood_burst=0)


frames_strategy = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.sampled_from(
        [HELLO, HEARTBEAT, frame(type="ack", id="req_1"), '{"type":"report","id":"x","status":"sent"}', "{}"]
    ),
)


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(frames_strategy, max_size=20), start_open=st.booleans())
def test_arbitrary_input_never_raises_and_state_stays_consistent(
    inputs: list[str | bytes], start_open: bool
) -> None:
    """Arbitrary bytes and text never raise; closing is final and every error frame is well-formed."""
    session = (
        open_session(max_errors=5) if start_open else RelaySession(device_id="dev_1", now=NOW, max_errors=5)
    )
    was_closing = False
    for step, data in enumerate(inputs):
        session.receive_frame(data, NOW + step)
        closing = session.state is SessionState.CLOSING
        assert closing == (session.close_code is not None)
        assert closing or not was_closing
        was_closing = closing
        assert session.error_count <= 5
        for out in sent(session):
            if isinstance(out, Error):
                assert out.code in {code.value for code in ErrorCode}
        session.events_received()


def _still_open(session: RelaySession) -> bool:
    return session.state is SessionState.OPEN and session.close_code is None


def test_commands_earn_frame_credit_beyond_the_flood_limit() -> None:
    """Each send command lets the relay answer with three frames that never count as a flood."""
    from datetime import UTC, datetime

    session = RelaySession(device_id="dev_x", now=0.0, flood_rate=1, flood_burst=5)
    session.receive_frame('{"type":"hello","protocol":1,"app_version":"1","sims":[],"queue_length":0}', 0.0)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(100):
        session.send_message(
            id=f"req_{i}", to="+998901234567", message="x", sim_slot=None, expires_at=expires
        )
    for i in range(100):
        for status in ("sent", "delivered"):
            frame = f'{{"type":"report","id":"req_{i}","status":"{status}","at":"2026-01-01T00:00:00Z"}}'
            session.receive_frame(frame, 0.0)
        session.receive_frame(f'{{"type":"ack","id":"req_{i}"}}', 0.0)
    assert _still_open(session)
    for _ in range(5):
        session.receive_frame('{"type":"heartbeat","network":"wifi","sims":[],"queue_length":0}', 0.0)
    assert session.state is SessionState.CLOSING  # credit spent: the plain limit applies again


def test_welcome_announces_the_relays_rate_limits() -> None:
    """The per-minute and per-day limits given to the session are announced in welcome."""
    session = RelaySession(device_id="dev_1", now=NOW, per_minute_limit=20, per_day_limit=None)
    session.receive_frame(HELLO, NOW)
    [welcome] = sent(session)
    assert isinstance(welcome, Welcome)
    assert (welcome.per_minute_limit, welcome.per_day_limit) == (20, None)
    session = RelaySession(device_id="dev_1", now=NOW, per_minute_limit=30, per_day_limit=500)
    session.receive_frame(HELLO, NOW)
    assert json.loads(session.data_to_send()[0])["per_day_limit"] == 500
