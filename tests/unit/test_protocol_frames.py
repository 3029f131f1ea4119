"""Unit tests of the relay protocol frames: codec, limits, error classification."""

from __future__ import annotations

import ast
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import protocol
from protocol import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_IN_FLIGHT,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    Ack,
    CloseCode,
    Error,
    ErrorCode,
    GatewayFrame,
    Heartbeat,
    Hello,
    InvalidFrame,
    ProtocolError,
    RelayFrame,
    Report,
    ReportAck,
    Send,
    Sim,
    Welcome,
    decode_gateway_frame,
    decode_relay_frame,
    encode_frame,
)

AT = datetime(2026, 3, 14, 12, 30, tzinfo=UTC)

RELAY_FRAMES: list[RelayFrame] = [
    Hello(
        protocol=1,
        app_version="1.4.2",
        model="Pixel 7",
        os_version="14",
        sims=[Sim(slot=0, carrier="Orange", ready=True), Sim(slot=1, carrier=None, ready=False)],
        queue_length=3,
    ),
    Hello(protocol=1, app_version="1", sims=[], queue_length=0),
    Heartbeat(
        battery=87,
        charging=True,
        signal=4,
        network="wifi",
        sims=[Sim(slot=0, carrier="Orange", ready=True)],
        app_version="1.4.2",
        queue_length=0,
    ),
    Heartbeat(network="unknown", sims=[], queue_length=12),
    Ack(id="req_01HV4Z6Q7T8Y9ABCDEFGHJKMNP"),
    Report(id="req_1", status="sent", at=AT, parts=2),
    Report(id="req_1", status="delivered", at=AT),
    Report(id="req_1", status="failed", reason="radio_off", at=AT, parts=None),
]

GATEWAY_FRAMES: list[GatewayFrame] = [
    Welcome(
        device_id="dev_01HV4Z6Q7T8Y9ABCDEFGHJKMNP",
        heartbeat_interval_seconds=30,
        max_in_flight=10,
        max_frame_bytes=MAX_FRAME_BYTES,
        server_time=AT,
    ),
    Send(id="req_1", to="+33612345678", message="Your code is 123456", sim_slot=None, expires_at=AT),
    Send(id="req_2", to="+15551234567", message="x" * 1600, sim_slot=1, expires_at=AT),
    ReportAck(id="req_1", status="delivered"),
    Error(code="unknown_id", message="ack for a command not sent in this session", ref="req_9"),
    Error(code="malformed_frame", message="binary frames are not allowed"),
]


def heartbeat_dict(**overrides: Any) -> dict[str, Any]:
    """A valid heartbeat as a JSON-ready dict, with some fields replaced."""
    frame: dict[str, Any] = {
        "type": "heartbeat",
        "battery": 50,
        "charging": False,
        "signal": 3,
        "network": "cellular",
        "sims": [{"slot": 0, "carrier": "Orange", "ready": True}],
        "app_version": "1.0",
        "queue_length": 0,
    }
    frame.update(overrides)
    return frame


def report_dict(**overrides: Any) -> dict[str, Any]:
    """A valid report as a JSON-ready dict, with some fields replaced."""
    frame: dict[str, Any] = {"type": "report", "id": "req_1", "status": "sent", "at": "2026-03-14T12:30:00Z"}
    frame.update(overrides)
    return frame


def hello_dict(**overrides: Any) -> dict[str, Any]:
    """A valid hello as a JSON-ready dict, with some fields replaced."""
    frame: dict[str, Any] = {
        "type": "hello",
        "protocol": 1,
        "app_version": "1.0",
        "sims": [],
        "queue_length": 0,
    }
    frame.update(overrides)
    return frame


def rejection(data: bytes | str) -> InvalidFrame:
    """Decode a relay frame that must be rejected and return the exception."""
    with pytest.raises(InvalidFrame) as info:
        decode_relay_frame(data)
    return info.value


@pytest.mark.parametrize("frame", RELAY_FRAMES, ids=lambda f: type(f).__name__)
def test_relay_frames_round_trip(frame: RelayFrame) -> None:
    """Every relay frame decodes back to an equal Struct after encoding, from bytes and from str."""
    data = encode_frame(frame)
    assert decode_relay_frame(data) == frame
    assert decode_relay_frame(data.decode()) == frame


@pytest.mark.parametrize("frame", GATEWAY_FRAMES, ids=lambda f: type(f).__name__)
def test_gateway_frames_round_trip(frame: GatewayFrame) -> None:
    """Every gateway frame decodes back to an equal Struct after encoding."""
    assert decode_gateway_frame(encode_frame(frame)) == frame


def test_wire_shape_uses_type_tag_and_utc_z_timestamps() -> None:
    """Frames are JSON objects tagged by "type"; UTC times are RFC 3339 with a Z suffix."""
    wire = json.loads(encode_frame(GATEWAY_FRAMES[1]))
    assert wire == {
        "type": "send",
        "id": "req_1",
        "to": "+33612345678",
        "message": "Your code is 123456",
        "sim_slot": None,
        "expires_at": "2026-03-14T12:30:00Z",
    }


def test_report_timestamp_with_offset_is_accepted() -> None:
    """A report time with a non-UTC offset decodes to the same instant."""
    report = decode_relay_frame(json.dumps(report_dict(at="2026-03-14T13:30:00+01:00")))
    assert isinstance(report, Report)
    assert report.at == AT
    assert report.at.utcoffset() == timezone(timedelta(hours=1)).utcoffset(None)


def test_nullable_fields_may_be_omitted() -> None:
    """Nullable relay fields default to null when absent."""
    frame = decode_relay_frame(b'{"type":"heartbeat","network":"none","sims":[],"queue_length":0}')
    assert frame == Heartbeat(network="none", sims=[], queue_length=0)


def test_unknown_extra_fields_are_ignored() -> None:
    """Unknown fields, at top level and inside a SIM, are ignored for forward compatibility."""
    data = heartbeat_dict(future_field={"x": [1, 2]}, sims=[{"slot": 1, "ready": True, "imsi": "secret"}])
    frame = decode_relay_frame(json.dumps(data))
    assert isinstance(frame, Heartbeat)
    assert frame.sims == [Sim(slot=1, carrier=None, ready=True)]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (heartbeat_dict(battery=101), "$.battery"),
        (heartbeat_dict(battery=-1), "$.battery"),
        (heartbeat_dict(signal=5), "$.signal"),
        (heartbeat_dict(network="5g"), "$.network"),
        (heartbeat_dict(queue_length=-1), "$.queue_length"),
        (heartbeat_dict(app_version="v" * 33), "$.app_version"),
        (heartbeat_dict(sims=[{"slot": i % 4, "ready": True} for i in range(5)]), "$.sims"),
        (heartbeat_dict(sims=[{"slot": 4, "ready": True}]), "$.sims[0].slot"),
        (heartbeat_dict(sims=[{"slot": 0, "carrier": "c" * 65, "ready": True}]), "$.sims[0].carrier"),
        (hello_dict(protocol=2), "$.protocol"),
        (hello_dict(app_version=""), "$.app_version"),
        (hello_dict(model="m" * 65), "$.model"),
        (hello_dict(os_version="o" * 33), "$.os_version"),
        ({"type": "ack", "id": "r" * 65}, "$.id"),
        ({"type": "ack", "id": ""}, "$.id"),
        ({"type": "ack", "id": 7}, "$.id"),
        (report_dict(status="lost"), "$.status"),
        (report_dict(status="failed", reason="r" * 65), "$.reason"),
        (report_dict(parts=0), "$.parts"),
        (report_dict(parts=256), "$.parts"),
        (report_dict(at="2026-03-14T12:30:00"), "$.at"),
        (report_dict(at="yesterday"), "$.at"),
    ],
)
def test_limits_are_rejected_as_invalid_field(data: dict[str, Any], path: str) -> None:
    """Each field limit rejects an out-of-range value with invalid_field naming the field."""
    error = rejection(json.dumps(data))
    assert error.code is ErrorCode.INVALID_FIELD
    assert path in error.message
    assert error.message.startswith(f"invalid {data['type']} frame:")


def test_failed_report_requires_reason() -> None:
    """A report with status failed and no reason is invalid; with a reason it is valid."""
    error = rejection(json.dumps(report_dict(status="failed")))
    assert error.code is ErrorCode.INVALID_FIELD
    assert "requires a reason" in error.message
    assert error.ref == "req_1"
    assert decode_relay_frame(json.dumps(report_dict(status="failed", reason="no_service")))


@pytest.mark.parametrize("data", [hello_dict(sims=None), {"type": "hello", "protocol": 1}, {"type": "ack"}])
def test_missing_or_null_required_fields_are_invalid_field(data: dict[str, Any]) -> None:
    """A missing or null required field is invalid_field."""
    assert rejection(json.dumps(data)).code is ErrorCode.INVALID_FIELD


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{not json", ErrorCode.MALFORMED_FRAME),
        ("", ErrorCode.MALFORMED_FRAME),
        (b"\xff\xfe{}", ErrorCode.MALFORMED_FRAME),
        ('{"type":"ack","id":"\ud800"}', ErrorCode.MALFORMED_FRAME),
        ("[1, 2]", ErrorCode.MALFORMED_FRAME),
        ('"hello"', ErrorCode.MALFORMED_FRAME),
        ("null", ErrorCode.MALFORMED_FRAME),
        ("[" * 100_000 + "]" * 100_000, ErrorCode.MALFORMED_FRAME),
        ('{"type":"ack","id":"x","deep":' + "[" * 100_000 + "]" * 100_000 + "}", ErrorCode.MALFORMED_FRAME),
        ('{"id":"req_1"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"reboot"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":7}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"welcome"}', ErrorCode.UNKNOWN_TYPE),
    ],
)
def test_undecodable_frames_are_classified(data: bytes | str, code: ErrorCode) -> None:
    """Bad JSON, non-objects, bad UTF-8 and deep nesting are malformed; a bad type tag is unknown_type."""
    assert rejection(data).code is code


def test_error_carries_frame_id_as_ref() -> None:
    """An invalid frame's string id, when usable, is carried as the error's ref."""
    assert rejection('{"type":"nope","id":"req_7"}').ref == "req_7"
    assert rejection('{"type":"ack","id":"' + "x" * 65 + '"}').ref is None


def test_error_messages_are_capped() -> None:
    """An error message never copies an unbounded amount of untrusted input."""
    error = rejection(json.dumps({"type": "t" * 10_000}))
    assert error.code is ErrorCode.UNKNOWN_TYPE
    assert len(error.message) <= 200


def test_gateway_decoder_rejects_relay_frames() -> None:
    """The gateway-frame decoder used by simulated relays rejects relay frame types."""
    with pytest.raises(InvalidFrame) as info:
        decode_gateway_frame(encode_frame(Ack(id="req_1")))
    assert info.value.code is ErrorCode.UNKNOWN_TYPE
    assert isinstance(info.value, ProtocolError)


def test_constants_match_the_documented_contract() -> None:
    """Version, subprotocol, limits and close codes have their documented values."""
    assert (PROTOCOL_VERSION, SUBPROTOCOL, MAX_FRAME_BYTES) == (1, "relaygate.v1", 65536)
    assert (DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_IN_FLIGHT) == (30, 10)
    assert sorted(int(code) for code in CloseCode) == [1000, 1001, 1008, 1009, 1011, 4000, 4001, 4002, 4008]
    assert {code.value for code in ErrorCode} == {
        "malformed_frame",
        "unknown_type",
        "invalid_field",
        "out_of_order",
        "unknown_id",
        "too_many_frames",
    }


def test_protocol_package_imports_only_stdlib_and_msgspec() -> None:
    """The protocol package stays sans-I/O: no asyncio, websockets, or other project packages."""
    forbidden = {"asyncio", "socket", "selectors", "threading", "ssl"}
    package_dir = Path(protocol.__file__).parent
    for source in package_dir.glob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                allowed = root in {"msgspec", "protocol", "__future__"} or root in sys.stdlib_module_names
                assert allowed and root not in forbidden, f"{source.name} imports {root}"
