"""Hostile relay input at the protocol edge: every string field refuses what PostgreSQL cannot
store, and a fuzzed stream of frames never raises out of the session."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    CloseCode,
    ErrorCode,
    InvalidFrame,
    ProtocolStateError,
    RelaySession,
    SessionState,
    decode_relay_frame,
)

AT = "2026-03-14T12:30:00Z"
SIM = {"slot": 0, "carrier": "Orange", "ready": True}
VALID: dict[str, dict[str, Any]] = {
    "hello": {
        "type": "hello",
        "protocol": 1,
        "app_version": "1.4.2",
        "model": "Pixel 7",
        "os_version": "14",
        "sims": [SIM],
        "queue_length": 0,
    },
    "heartbeat": {
        "type": "heartbeat",
        "network": "wifi",
        "sims": [SIM],
        "app_version": "1.4.2",
        "queue_length": 0,
    },
    "ack": {"type": "ack", "id": "req_1"},
    "report": {"type": "report", "id": "req_1", "status": "failed", "reason": "radio_off", "at": AT},
}
# Every string field a relay sends, as (frame type, path to the field).
STRING_FIELDS = [
    ("hello", ("app_version",)),
    ("hello", ("model",)),
    ("hello", ("os_version",)),
    ("hello", ("sims", 0, "carrier")),
    ("heartbeat", ("app_version",)),
    ("heartbeat", ("sims", 0, "carrier")),
    ("ack", ("id",)),
    ("report", ("id",)),
    ("report", ("reason",)),
]


def _with(frame_type: str, path: tuple[str | int, ...], value: str) -> dict[str, Any]:
    frame: Any = json.loads(json.dumps(VALID[frame_type]))
    target = frame
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return dict(frame)


@pytest.mark.parametrize(("frame_type", "path"), STRING_FIELDS)
@pytest.mark.parametrize("value", ["a\x00", "\x00", "1.0\x00\n"])
def test_every_string_field_refuses_nul(frame_type: str, path: tuple[str | int, ...], value: str) -> None:
    """U+0000 anywhere in any relay string field is invalid_field, naming the field."""
    with pytest.raises(InvalidFrame) as info:
        decode_relay_frame(json.dumps(_with(frame_type, path, value)))
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert "U+0000" in info.value.message and str(path[-1]) in info.value.message


@pytest.mark.parametrize(("frame_type", "path"), STRING_FIELDS)
def test_every_string_field_refuses_a_lone_surrogate(frame_type: str, path: tuple[str | int, ...]) -> None:
    """A lone UTF-16 surrogate escape (unstorable in PostgreSQL) is refused by the JSON decoder."""
    text = json.dumps(_with(frame_type, path, "SURROGATE")).replace("SURROGATE", "x\\ud800y")
    with pytest.raises(InvalidFrame) as info:
        decode_relay_frame(text)
    assert info.value.code is ErrorCode.MALFORMED_FRAME


@pytest.mark.parametrize(("frame_type", "path"), STRING_FIELDS)
def test_every_string_field_keeps_other_text(frame_type: str, path: tuple[str | int, ...]) -> None:
    """Control characters other than NUL, a trailing newline and astral characters are storable."""
    decode_relay_frame(json.dumps(_with(frame_type, path, "a\u0001\t😀\n")))


@pytest.mark.parametrize("frame_type", ["hello", "heartbeat"])
def test_queue_length_fits_the_database(frame_type: str) -> None:
    """queue_length is bounded (it is stored as a 32-bit integer): 2**31 is invalid_field."""
    decode_relay_frame(json.dumps({**VALID[frame_type], "queue_length": 1_000_000}))
    with pytest.raises(InvalidFrame) as info:
        decode_relay_frame(json.dumps({**VALID[frame_type], "queue_length": 2**31}))
    assert info.value.code is ErrorCode.INVALID_FIELD and "queue_length" in info.value.message


def test_nul_report_gets_an_error_frame_and_the_session_stays_open() -> None:
    """The report of the issue is answered with invalid_field, its id as ref, and no event."""
    session = RelaySession(device_id="dev_1", now=0.0)
    session.receive_frame(json.dumps(VALID["hello"]), 0.0)
    session.events_received(), session.data_to_send()
    report = {"type": "report", "id": "req_x\u0000", "status": "failed", "reason": "x", "at": AT}
    session.receive_frame(json.dumps(report), 1.0)
    (error,) = [json.loads(f) for f in session.data_to_send()]
    assert error["type"] == "error" and error["code"] == "invalid_field" and error["ref"] == "req_x\x00"
    assert [type(e).__name__ for e in session.events_received()] == ["ProtocolViolation"]
    assert session.state is SessionState.OPEN


def test_refuse_report_answers_with_an_error_frame() -> None:
    """A report the gateway could not store gets invalid_field with its id, counts as an error,
    is refused before hello and is a no-op once closing."""
    session = RelaySession(device_id="dev_1", now=0.0, max_errors=2)
    with pytest.raises(ProtocolStateError):
        session.refuse_report("req_1", "could not be stored")
    session.receive_frame(json.dumps(VALID["hello"]), 0.0)
    session.data_to_send()
    session.refuse_report("req_1", "could not be stored")
    (error,) = [json.loads(f) for f in session.data_to_send()]
    assert error == {
        "type": "error",
        "code": "invalid_field",
        "message": "could not be stored",
        "ref": "req_1",
    }
    assert session.error_count == 1 and session.state is SessionState.OPEN
    session.refuse_report("req_2", "could not be stored")
    assert session.close_code is CloseCode.PROTOCOL_VIOLATION
    session.data_to_send()
    session.refuse_report("req_3", "could not be stored")
    assert session.data_to_send() == [] and session.error_count == 2


# --- fuzzing ----------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8", min_codepoint=0, max_codepoint=0x2FFFF), max_size=80)
_NASTY = st.sampled_from(["\x00", "req_x\x00", "\n", "\x1b[31m", "\u202e", "9" * 400, "", "\ud800"])
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT | _NASTY
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT | _NASTY, inner, max_size=5),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    [
        "type",
        "id",
        "status",
        "reason",
        "at",
        "parts",
        "protocol",
        "app_version",
        "model",
        "os_version",
        "sims",
        "queue_length",
        "battery",
        "charging",
        "signal",
        "network",
        "carrier",
        "slot",
        "ready",
    ]
)
_TYPES = st.sampled_from(["hello", "heartbeat", "ack", "report", "welcome", "", "HELLO", "hello\x00"])


@st.composite
def _frame_like(draw: st.DrawFn) -> str | bytes:
    """Something a hostile relay might send: near-valid frames with fields mutated, random JSON,
    raw text and bytes, deep nesting, huge strings."""
    kind = draw(st.integers(0, 5))
    if kind == 0:  # a valid frame with some fields replaced or removed
        frame = dict(VALID[draw(st.sampled_from(sorted(VALID)))])
        for key in draw(st.lists(_KEYS, max_size=4)):
            if draw(st.booleans()):
                frame[key] = draw(_JSON)
            else:
                frame.pop(key, None)
        return json.dumps(frame)
    if kind == 1:  # a random object with frame-like keys
        frame = draw(st.dictionaries(_KEYS, _JSON, max_size=8))
        frame.setdefault("type", draw(_TYPES))
        return json.dumps(frame)
    if kind == 2:
        return json.dumps(draw(_JSON))
    if kind == 3:
        return draw(_TEXT | _NASTY)
    if kind == 4:
        depth = draw(st.sampled_from([10, 1000, 5000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + "1" + closer * depth
    return draw(st.binary(max_size=64) | st.sampled_from([b"\xff\xfe", b'{"type":"hello"}']))


_DOCUMENTED_CLOSES = {CloseCode.PROTOCOL_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.TOO_MANY_FRAMES}
_ERROR_CODES = {code.value for code in ErrorCode}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(say_hello=st.booleans(), frames=st.lists(_frame_like(), min_size=1, max_size=12))
def test_fuzzed_frames_never_escape_the_session(say_hello: bool, frames: list[str | bytes]) -> None:
    """Random frames never raise out of receive_frame; each is accepted, answered with a
    documented error frame, or ends the session with a documented close code."""
    session = RelaySession(device_id="dev_1", now=0.0)
    if say_hello:
        session.receive_frame(json.dumps(VALID["hello"]), 0.0)
        session.data_to_send(), session.events_received()
    for index, data in enumerate(frames):
        was_closing = session.state is SessionState.CLOSING
        errors_before = session.error_count
        session.receive_frame(data, 1.0 + index)
        out = [json.loads(f) for f in session.data_to_send()]
        session.events_received()
        if was_closing:
            assert out == []
            continue
        for frame in out:
            assert frame["type"] in ("welcome", "error"), frame
            if frame["type"] == "error":
                assert frame["code"] in _ERROR_CODES
        assert session.error_count - errors_before == sum(f["type"] == "error" for f in out)
        if session.state is SessionState.CLOSING:
            assert session.close_code in _DOCUMENTED_CLOSES
        elif not out:  # accepted silently: it must have been a valid frame
            decode_relay_frame(data)


@settings(max_examples=150, deadline=None)
@given(data=_frame_like())
def test_the_decoder_raises_only_invalid_frame(data: str | bytes) -> None:
    """decode_relay_frame either returns a frame or raises InvalidFrame, never anything else."""
    try:
        decode_relay_frame(data)
    except InvalidFrame as exc:
        assert exc.code in set(ErrorCode)
