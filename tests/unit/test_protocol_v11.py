"""Protocol v1.1: version negotiation, the cancel frame and cancel_result, and the rule that a
v1 session never sends nor accepts a v1.1 frame. Pure: no sockets, no event loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from protocol import (
    SUBPROTOCOLS,
    Cancel,
    CancelResult,
    CancelResultReceived,
    CommandAcked,
    Error,
    ErrorCode,
    InvalidFrame,
    ProtocolStateError,
    ProtocolVersion,
    ProtocolViolation,
    RelaySession,
    decode_gateway_frame,
    decode_relay_frame,
    encode_frame,
    negotiate,
)

NOW = 1_773_491_400.0
HELLO = json.dumps({"type": "hello", "protocol": 1, "app_version": "1.0", "sims": [], "queue_length": 0})


def open_session(version: ProtocolVersion) -> RelaySession:
    """A session under ``version`` that received a hello, output and events drained."""
    session = RelaySession(device_id="dev_1", now=NOW, version=version)
    session.receive_frame(HELLO, NOW)
    session.data_to_send()
    session.events_received()
    return session


def result(**fields: Any) -> str:
    """A cancel_result frame."""
    return json.dumps({"type": "cancel_result", **fields})


@pytest.mark.parametrize(
    ("offered", "version"),
    [
        (["relaygate.v1.1", "relaygate.v1"], ProtocolVersion.V1_1),
        (["relaygate.v1, relaygate.v1.1"], ProtocolVersion.V1_1),
        (["relaygate.v1"], ProtocolVersion.V1),
        (["relaygate.v1.1"], ProtocolVersion.V1_1),
        (["relaygate.v2", "chat"], None),
        ([], None),
    ],
)
def test_negotiation_picks_the_newest_offered(offered: list[str], version: ProtocolVersion | None) -> None:
    """The gateway picks the newest version the relay offers, whatever the order; none of ours: None."""
    assert negotiate(offered) is version


def test_versions_are_listed_newest_first() -> None:
    """The gateway's subprotocol list is in its order of preference and names both versions."""
    assert SUBPROTOCOLS == ("relaygate.v1.1", "relaygate.v1")
    assert ProtocolVersion.from_subprotocol("relaygate.v1.1") is ProtocolVersion.V1_1
    assert ProtocolVersion.from_subprotocol(None) is None
    assert ProtocolVersion.V1_1.label == "1.1" and ProtocolVersion.V1_1 > ProtocolVersion.V1


def test_cancel_frames_round_trip() -> None:
    """cancel and cancel_result decode to their Structs; a bad result is invalid_field."""
    assert decode_gateway_frame(encode_frame(Cancel(id="req_1"))) == Cancel(id="req_1")
    frame = decode_relay_frame(result(id="req_1", result="too_late"))
    assert frame == CancelResult(id="req_1", result="too_late")
    with pytest.raises(InvalidFrame) as info:
        decode_relay_frame(result(id="req_1", result="maybe"))
    assert info.value.code == ErrorCode.INVALID_FIELD


def test_v1_session_never_sends_cancel() -> None:
    """A v1 session refuses to write a cancel frame: the relay would not know it."""
    session = open_session(ProtocolVersion.V1)
    assert not session.can_cancel
    with pytest.raises(ProtocolStateError):
        session.send_cancel("req_1")
    assert session.data_to_send() == []


def test_v11_session_sends_cancel() -> None:
    """A v1.1 session writes {"type": "cancel", "id"}."""
    session = open_session(ProtocolVersion.V1_1)
    session.send_cancel("req_1")
    assert [json.loads(d) for d in session.data_to_send()] == [{"type": "cancel", "id": "req_1"}]


def test_cancel_before_hello_is_refused() -> None:
    """No command can go out before the session is open."""
    session = RelaySession(device_id="dev_1", now=NOW, version=ProtocolVersion.V1_1)
    with pytest.raises(ProtocolStateError):
        session.send_cancel("req_1")


def test_cancel_result_on_v1_is_unknown_type() -> None:
    """cancel_result from a v1 relay is answered like any unknown frame type; no event."""
    session = open_session(ProtocolVersion.V1)
    session.receive_frame(result(id="req_1", result="cancelled"), NOW)
    errors = [decode_gateway_frame(d) for d in session.data_to_send()]
    assert len(errors) == 1 and isinstance(errors[0], Error)
    assert (errors[0].code, errors[0].ref) == ("unknown_type", "req_1")
    events = session.events_received()
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)


def test_cancel_result_on_v11_is_an_event_and_counts_as_taken() -> None:
    """On v1.1, cancel_result becomes CancelResultReceived; for an unacked command it also proves
    the relay took it (CommandAcked first)."""
    session = open_session(ProtocolVersion.V1_1)
    session.send_message(
        id="req_1", to="+998901234567", message="x", sim_slot=None, expires_at=datetime.now(UTC)
    )
    session.data_to_send()
    session.receive_frame(result(id="req_1", result="cancelled", at="2026-03-14T12:30:01Z"), NOW)
    events = session.events_received()
    assert isinstance(events[0], CommandAcked) and isinstance(events[1], CancelResultReceived)
    assert events[1].frame.result == "cancelled" and session.unacked == frozenset()
    session.ack_report("req_1", "cancelled")
    assert [json.loads(d) for d in session.data_to_send()] == [
        {"type": "report_ack", "id": "req_1", "status": "cancelled"}
    ]
