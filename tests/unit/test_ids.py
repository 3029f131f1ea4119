"""Our ULID encoder against python-ulid's: the same 26 characters for the same bits."""

from __future__ import annotations

import os
import time

import pytest
from ulid import ULID

from gateway.ids import has_prefix, id_floor, id_time, new_id


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No id made before the test (the patched clocks go anywhere)."""
    monkeypatch.setattr("gateway.ids._last", -1)


@pytest.mark.parametrize(
    ("millis", "randomness"),
    [
        (0, bytes(10)),
        (2**48 - 1, b"\xff" * 10),
        (1_764_000_000_123, bytes(range(10))),
        (1_764_000_000_123, b"\x80" + bytes(9)),
    ],
)
def test_new_id_is_the_ulid_of_its_time_and_randomness(
    monkeypatch: pytest.MonkeyPatch, millis: int, randomness: bytes
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: millis * 1_000_000 + 999_999)
    monkeypatch.setattr(os, "urandom", lambda n: randomness[:n])
    expected = ULID.from_int(millis << 80 | int.from_bytes(randomness))
    made = new_id("req")
    assert made == f"req_{expected}"
    assert has_prefix(made, "req")
    assert ULID.from_str(made[4:]).milliseconds == millis


def test_random_ids_round_trip_through_python_ulid() -> None:
    for _ in range(2_000):
        made = new_id("msg")
        assert str(ULID.from_str(made[4:])) == made[4:]


def test_ids_sort_like_their_times_and_floors_bound_them(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    monkeypatch.setattr(time, "time_ns", lambda: int(now * 1e9))
    first = new_id("req")
    monkeypatch.setattr(time, "time_ns", lambda: int((now + 0.002) * 1e9))
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))  # the smallest randomness
    second = new_id("req")
    assert first < second
    assert id_floor("req", now + 0.002) <= second
    assert abs(id_time(second) - (now + 0.002)) < 0.001


def test_ids_of_one_millisecond_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like python-ulid's monotonic generator: later ids sort after earlier ones, even with the
    randomness falling or the clock stepping back."""
    randomness = iter([b"\xff" * 10, b"\x00" * 10, b"\x80" * 10, b"\x00" * 10])
    monkeypatch.setattr(os, "urandom", lambda n: next(randomness))
    monkeypatch.setattr(time, "time_ns", lambda: 1_764_000_000_123_000_000)
    made = [new_id("evt") for _ in range(3)]
    monkeypatch.setattr(time, "time_ns", lambda: 1_764_000_000_100_000_000)  # 23 ms back
    made.append(new_id("evt"))
    assert made == sorted(made) and len(set(made)) == 4


@pytest.mark.parametrize("at", [0.0, -5.0, 1.0005, 1_764_000_000.1234, 1_764_000_000.9999, 2.0**47 / 1000])
def test_id_floor_is_python_ulids_timestamp_prefix(at: float) -> None:
    expected = str(ULID.from_timestamp(max(at, 0.0)))[:10]
    assert id_floor("req", at) == f"req_{expected}{'0' * 16}"


def test_id_time_reads_the_milliseconds_python_ulid_reads() -> None:
    for _ in range(500):
        made = new_id("req")
        assert id_time(made) == ULID.from_str(made[4:]).timestamp
    assert id_time(f"req_{ULID.from_int((2**48 - 1) << 80)}") == (2**48 - 1) / 1000


@pytest.mark.parametrize(
    "value", ["evt_ooooooooooooo", "evt_", "req", "", "evt_01ARZ3N", "evt_01arz3ndek-tsv4rrffq69g5fav"]
)
def test_id_time_refuses_what_is_not_a_prefixed_ulid_with_value_error(value: str) -> None:
    """Lower case, short, missing prefix or outside Crockford's alphabet: ValueError, the one
    error a caller (the webhook latency metric, for ids an import made) has to expect."""
    with pytest.raises(ValueError):
        id_time(value)
