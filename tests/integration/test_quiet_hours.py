"""Quiet hours: the account's sending windows, set through ``PATCH /v1/account`` and validated
strictly; messages outside a window wait (``scheduled``/``quiet_hours``) and go when it opens;
OTP (and ``high`` when exempted) go at any time. Driven by a movable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.clock import next_local
from tests.harness import ApiClient, MovableClock, RunningGateway, make_account, parse_time, start_gateway
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"
TASHKENT = ZoneInfo("Asia/Tashkent")
WEEKDAYS = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
QUIET = {"time_zone": "Asia/Tashkent", "windows": WEEKDAYS, "exempt": ["otp"]}


@pytest.fixture
def clock() -> MovableClock:
    """A clock standing at the next Monday 08:00 in Tashkent (an hour before the window)."""
    clock = MovableClock()
    clock.jump_to(next_local(clock.now(), 0, 8, 0, TASHKENT))
    return clock


@pytest.fixture
async def shifted(database_url: str, clock: MovableClock) -> AsyncIterator[RunningGateway]:
    """A gateway whose send path reads ``clock``."""
    running = await start_gateway(database_url, clock=clock)
    yield running
    await running.stop()


@pytest.fixture
async def qapi(shifted: RunningGateway, database_url: str, session: aiohttp.ClientSession) -> ApiClient:
    """A client of an account with weekday 09:00-21:00 quiet hours (OTP exempt)."""
    _, token = await make_account(database_url)
    api = ApiClient(session, shifted.base_url, token)
    status, body, _ = await api.request("PATCH", "/v1/account", json={"quiet_hours": QUIET})
    assert status == 200, body
    return api


async def send(api: ApiClient, **body: Any) -> dict[str, Any]:
    """POST /v1/sms/send."""
    status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hi", **body})
    assert status == 200, answer
    return dict(answer)


async def test_outside_the_window_messages_wait_and_go_when_it_opens(
    qapi: ApiClient, shifted: RunningGateway, clock: MovableClock
) -> None:
    """At 08:00 a normal and a high message are held until 09:00 (status scheduled, hold_reason
    quiet_hours, not_before), an OTP goes at once; at 09:00 both go, high first, and their
    expiry counts from 09:00."""
    paired = await pair_relay(qapi)
    relay = await RawRelay.connect(shifted.relay_url, paired["device_token"])
    opening = clock.now().astimezone(TASHKENT).replace(hour=9, minute=0, second=0, microsecond=0)
    normal = await send(qapi, ttl_seconds=600)
    high = await send(qapi, priority="high")
    for answer in (normal, high):
        assert answer["status"] == "scheduled" and answer["hold_reason"] == "quiet_hours", answer
        assert parse_time(answer["not_before"]) == opening
    _, view, _ = await qapi.get("/v1/messages/status", params={"request_id": normal["request_id"]})
    assert (view["status"], view["hold_reason"], parse_time(view["not_before"])) == (
        "scheduled",
        "quiet_hours",
        opening,
    )
    assert parse_time(view["expires_at"]) == opening + timedelta(seconds=600)
    status, otp, _ = await qapi.post("/v1/otp/send", json={"to": TO, "purpose": "login"})
    assert status == 200, otp
    assert (await relay.recv())["id"] == otp["request_id"]  # exempt: at once
    clock.advance(3600)
    assert shifted.gateway.pipeline is not None
    shifted.gateway.pipeline.wake()
    first, second = await relay.recv(), await relay.recv()
    assert [first["id"], second["id"]] == [high["request_id"], normal["request_id"]]
    await relay.close()


async def test_high_priority_may_be_exempted(qapi: ApiClient) -> None:
    """With exempt ["otp", "high"] a high message is queued at once; a normal one still waits."""
    status, body, _ = await qapi.request(
        "PATCH", "/v1/account", json={"quiet_hours": {**QUIET, "exempt": ["otp", "high"]}}
    )
    assert status == 200 and body["account"]["quiet_hours"]["exempt"] == ["otp", "high"], body
    assert (await send(qapi, priority="high"))["status"] == "queued"
    assert (await send(qapi))["status"] == "scheduled"


async def test_send_at_in_quiet_hours_waits_for_the_next_window(qapi: ApiClient, clock: MovableClock) -> None:
    """send_at at 22:00 Monday (after the window) waits for Tuesday 09:00 (hold_reason
    quiet_hours); send_at at 10:00 is simply scheduled for 10:00."""
    monday = clock.now().astimezone(TASHKENT).replace(minute=0, second=0, microsecond=0)
    late = await send(qapi, send_at=monday.replace(hour=22).isoformat())
    assert late["hold_reason"] == "quiet_hours"
    assert parse_time(late["not_before"]) == (monday + timedelta(days=1)).replace(hour=9)
    ten = monday.replace(hour=10)
    inside = await send(qapi, send_at=ten.isoformat())
    assert (inside["hold_reason"], parse_time(inside["not_before"])) == ("send_at", ten)


async def test_friday_evening_waits_for_monday(qapi: ApiClient, clock: MovableClock) -> None:
    """After Friday's window the next opening is Monday 09:00 (weekends have no window)."""
    friday = clock.now().astimezone(TASHKENT).replace(second=0, microsecond=0) + timedelta(days=4)
    answer = await send(qapi, send_at=friday.replace(hour=21, minute=30).isoformat())
    assert parse_time(answer["not_before"]) == (friday + timedelta(days=3)).replace(hour=9, minute=0)


async def test_quiet_hours_set_shown_and_cleared(qapi: ApiClient) -> None:
    """GET /v1/account shows the setting; null clears it and messages go at once again."""
    _, body, _ = await qapi.get("/v1/account")
    shown = body["account"]["quiet_hours"]
    assert shown["time_zone"] == "Asia/Tashkent" and shown["windows"]["mon"] == [["09:00", "21:00"]]
    assert shown["windows"]["sat"] == [] and shown["exempt"] == ["otp"]
    status, body, _ = await qapi.request("PATCH", "/v1/account", json={"quiet_hours": None})
    assert status == 200 and body["account"]["quiet_hours"] is None
    assert (await send(qapi))["status"] == "queued"


@pytest.mark.parametrize(
    ("quiet", "field"),
    [
        ({**QUIET, "time_zone": "Mars/Olympus"}, "quiet_hours.time_zone"),
        ({**QUIET, "windows": {"mon": [["21:00", "09:00"]]}}, "quiet_hours.windows.mon"),
        ({**QUIET, "windows": {"tue": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "quiet_hours.windows.tue"),
        ({**QUIET, "windows": {}}, "quiet_hours.windows"),
        ({**QUIET, "windows": {"mon": [["9:00", "21:00"]]}}, "quiet_hours"),
        ({**QUIET, "windows": {"mon": [["09:00", "24:01"]]}}, "quiet_hours"),
        ({**QUIET, "windows": {"monday": [["09:00", "21:00"]]}}, "quiet_hours"),
        ({**QUIET, "windows": {"mon": [["09:00"]]}}, "quiet_hours"),
        ({**QUIET, "exempt": ["normal"]}, "quiet_hours"),
        ({**QUIET, "exempt": ["otp", "otp"]}, "quiet_hours.exempt"),
        ({"windows": WEEKDAYS}, "quiet_hours"),
        ({**QUIET, "extra": 1}, "quiet_hours"),
    ],
)
async def test_invalid_quiet_hours_are_refused(qapi: ApiClient, quiet: dict[str, Any], field: str) -> None:
    """Every malformed setting is a validation_error naming the field, and changes nothing."""
    status, body, _ = await qapi.request(
        "PATCH", "/v1/account", json={"quiet_hours": quiet, "name": "changed"}
    )
    assert status == 422, body
    fields = body["error"]["details"]["fields"]
    assert any(name.startswith(field) for name in fields), fields
    _, account, _ = await qapi.get("/v1/account")
    assert account["account"]["quiet_hours"]["time_zone"] == "Asia/Tashkent"
    assert account["account"]["name"] != "changed"
