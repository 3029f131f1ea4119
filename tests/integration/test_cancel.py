"""Cancel (``DELETE /v1/messages/{request_id}``) in every state, end to end: queued, scheduled,
on a v1.1 relay (cancel frame, cancelled or too_late), on a v1 relay (never sent a cancel),
sent; the message.cancelled event; a replaced OTP's queued SMS; the simulator's v1.1."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import msgspec

from gateway.events import MessageEventData
from gateway.sim.relay import RelayFleet
from tests.harness import (
    ApiClient,
    MovableClock,
    RunningGateway,
    eventually,
    fleet_options,
    make_account,
    start_gateway,
)
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"
V11 = ("relaygate.v1.1", "relaygate.v1")


async def send(api: ApiClient, **body: Any) -> str:
    """POST /v1/sms/send; the request id."""
    status, answer, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "hello", **body})
    assert status == 200, answer
    return str(answer["request_id"])


async def cancel(api: ApiClient, request_id: str) -> tuple[int, dict[str, Any]]:
    """DELETE /v1/messages/{request_id}."""
    status, body, _ = await api.request("DELETE", f"/v1/messages/{request_id}")
    return status, dict(body)


async def status_of(api: ApiClient, request_id: str) -> dict[str, Any]:
    """GET /v1/messages/status."""
    status, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
    assert status == 200, body
    return dict(body)


async def wait_status(api: ApiClient, request_id: str, wanted: str) -> dict[str, Any]:
    """The status view once it reads ``wanted``."""

    async def probe() -> dict[str, Any] | None:
        body = await status_of(api, request_id)
        return body if body["status"] == wanted else None

    return await eventually(probe, what=f"{request_id} {wanted}")


async def cancelled_events(database_url: str) -> list[dict[str, Any]]:
    """``data`` of every message.cancelled event in the outbox."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE type = 'message.cancelled' ORDER BY id")
    finally:
        await conn.close()
    for r in rows:  # the documented shape, no more, no less
        msgspec.json.decode(r["data"], type=MessageEventData)
    return [json.loads(r["data"]) for r in rows]


async def dispatched_to(relay: RawRelay) -> str:
    """Read the next frame (a send), ack it; the message id."""
    frame = await relay.recv()
    assert frame["type"] == "send", frame
    await relay.send({"type": "ack", "id": frame["id"]})
    return str(frame["id"])


async def test_cancel_queued_message(api: ApiClient, gateway: RunningGateway, database_url: str) -> None:
    """A queued message is cancelled at once (200), never reaches a relay, emits
    message.cancelled once; cancelling again answers the same."""
    request_id = await send(api)
    status, body = await cancel(api, request_id)
    assert (status, body) == (
        200,
        {"ok": True, "request_id": request_id, "status": "cancelled", "cancel_requested_at": None},
    )
    view = await status_of(api, request_id)
    assert view["status"] == "cancelled" and view["cancel_reason"] == "api" and view["cancelled_at"]
    assert await cancel(api, request_id) == (200, body)
    events = await cancelled_events(database_url)
    assert [(e["request_id"], e["status"], e["cancel_reason"]) for e in events] == [
        (request_id, "cancelled", "api")
    ]
    # A relay that comes online gets the next message, not the cancelled one.
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    later = await send(api)
    assert await dispatched_to(relay) == later
    await relay.close()


async def test_cancel_scheduled_message(api: ApiClient, gateway: RunningGateway) -> None:
    """A scheduled message (send_at ahead) is cancelled with 200 and stays cancelled."""
    assert gateway.gateway.pipeline is not None
    at = (gateway.gateway.pipeline.now() + timedelta(minutes=10)).isoformat()
    request_id = await send(api, send_at=at)
    assert (await status_of(api, request_id))["status"] == "scheduled"
    status, body = await cancel(api, request_id)
    assert status == 200 and body["status"] == "cancelled"
    assert (await status_of(api, request_id))["status"] == "cancelled"
    assert request_id not in gateway.gateway.pipeline.held


async def test_cancel_on_v11_relay_confirmed(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """On a v1.1 relay: 202 dispatched, a cancel frame, the relay's cancel_result cancelled gets a
    report_ack and the message ends cancelled with its event."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V11)
    assert relay.ws.subprotocol == "relaygate.v1.1"
    request_id = await send(api)
    assert await dispatched_to(relay) == request_id
    await wait_status(api, request_id, "dispatched")
    status, body = await cancel(api, request_id)
    assert status == 202 and body["status"] == "dispatched" and body["cancel_requested_at"], body
    assert await relay.recv() == {"type": "cancel", "id": request_id}
    assert (await status_of(api, request_id))["cancel_requested_at"] is not None
    await relay.send(
        {"type": "cancel_result", "id": request_id, "result": "cancelled", "at": "2026-11-23T10:00:00Z"}
    )
    assert await relay.recv() == {"type": "report_ack", "id": request_id, "status": "cancelled"}
    view = await wait_status(api, request_id, "cancelled")
    assert view["history"][-1]["outcome"] == "cancelled"
    assert [e["request_id"] for e in await cancelled_events(database_url)] == [request_id]
    assert (
        gateway.gateway.pipeline is not None
        and gateway.gateway.pipeline.device_load(paired["device_id"]) == 0
    )
    await relay.close()


async def test_cancel_on_v11_relay_too_late(api: ApiClient, gateway: RunningGateway) -> None:
    """A v1.1 relay answering too_late leaves the message to its reports; once sent, a cancel is
    409 conflict with reason too_late."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V11)
    request_id = await send(api)
    await dispatched_to(relay)
    await wait_status(api, request_id, "dispatched")
    assert (await cancel(api, request_id))[0] == 202
    assert (await relay.recv())["type"] == "cancel"
    await relay.send({"type": "cancel_result", "id": request_id, "result": "too_late"})
    await relay.send({"type": "report", "id": request_id, "status": "sent", "at": "2026-11-23T10:00:00Z"})
    assert await relay.recv() == {"type": "report_ack", "id": request_id, "status": "sent"}
    await wait_status(api, request_id, "sent")
    status, body = await cancel(api, request_id)
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["details"]["reason"] == "too_late" and body["error"]["details"]["status"] == "sent"
    await relay.close()


async def test_cancel_on_v1_relay_is_refused_and_no_frame_sent(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """A relay that speaks only v1 is never sent a cancel: 409 relay_cannot_cancel, and the next
    frame it gets is the report_ack it asks for."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    assert relay.ws.subprotocol == "relaygate.v1"
    request_id = await send(api)
    await dispatched_to(relay)
    await wait_status(api, request_id, "dispatched")
    status, body = await cancel(api, request_id)
    assert status == 409 and body["error"]["details"]["reason"] == "relay_cannot_cancel", body
    await relay.send(
        {"type": "report", "id": request_id, "status": "delivered", "at": "2026-11-23T10:00:00Z"}
    )
    assert await relay.recv() == {"type": "report_ack", "id": request_id, "status": "delivered"}
    # cancel_result is not a v1 frame
    await relay.send({"type": "cancel_result", "id": request_id, "result": "cancelled"})
    error = await relay.recv()
    assert error["type"] == "error" and error["code"] == "unknown_type", error
    await wait_status(api, request_id, "delivered")
    await relay.close()


async def test_cancel_unknown_and_other_accounts_message(
    api: ApiClient, gateway: RunningGateway, session: aiohttp.ClientSession, database_url: str
) -> None:
    """Unknown ids and another account's messages are 404; the message is untouched."""
    request_id = await send(api)
    _, other_token = await make_account(database_url, "other")
    other = ApiClient(session, gateway.base_url, other_token)
    for who, rid in ((other, request_id), (api, "req_01ZZZZZZZZZZZZZZZZZZZZZZZZ"), (api, "nope")):
        status, body = await cancel(who, rid)
        assert status == 404 and body["error"]["code"] == "not_found", body
    assert (await status_of(api, request_id))["status"] == "queued"


async def test_simulated_v11_relay_cancels_before_sending(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """The simulator speaks v1.1: a message it took but has not "sent" is cancelled and never
    sent; its cancel_result is acknowledged and leaves its outbox."""
    fleet = await RelayFleet.start(fleet_options(gateway, account[1], 1, sent_delay=60.0))
    try:
        relay = fleet.relays[0]
        assert relay.subprotocol == "relaygate.v1.1"
        request_id = await send(api)
        await eventually(lambda: _acked(gateway, request_id), what="acked")
        status, _ = await cancel(api, request_id)
        assert status == 202
        await wait_status(api, request_id, "cancelled")
        await eventually(lambda: _true((request_id, "cancelled") in relay.acked_reports), what="report_ack")
        assert relay.cancels == [(request_id, "cancelled")] and relay.sent == [] and not relay.outbox
    finally:
        await fleet.stop()


async def test_simulated_v1_relay_gets_no_cancel(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A simulated relay restricted to v1 negotiates v1 and is refused a cancel (it would not
    understand the frame); its message is delivered."""
    fleet = await RelayFleet.start(fleet_options(gateway, account[1], 1, sent_delay=0.5, protocol="1"))
    try:
        relay = fleet.relays[0]
        assert relay.subprotocol == "relaygate.v1"
        request_id = await send(api)
        await eventually(lambda: _acked(gateway, request_id), what="acked")
        status, body = await cancel(api, request_id)
        assert status == 409 and body["error"]["details"]["reason"] == "relay_cannot_cancel"
        await wait_status(api, request_id, "delivered")
        assert relay.cancels == [] and not relay.errors_received
    finally:
        await fleet.stop()


async def test_replaced_otp_sms_still_queued_is_cancelled(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    """A new code for the same number and purpose cancels the old code's SMS while it is still
    queued (cancel_reason otp_replaced); the new one stays queued."""
    clock = MovableClock()
    running = await start_gateway(database_url, clock=clock)
    try:
        _, token = await make_account(database_url)
        api = ApiClient(session, running.base_url, token)
        body = {"to": TO, "purpose": "login"}
        status, first, _ = await api.post("/v1/otp/send", json=body)
        assert status == 200, first
        clock.advance(31)  # past the resend interval
        status, second, _ = await api.post("/v1/otp/send", json=body)
        assert status == 200, second
        old = await status_of(api, first["request_id"])
        assert (old["status"], old["cancel_reason"]) == ("cancelled", "otp_replaced")
        assert (await status_of(api, second["request_id"]))["status"] == "queued"
        events = await cancelled_events(database_url)
        assert [(e["request_id"], e["kind"]) for e in events] == [(first["request_id"], "otp")]
    finally:
        await running.stop()


async def test_cancel_queued_batch_returns_only_what_it_cancelled(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """Pipeline.cancel_queued (what batch cancels call) cancels the queued and scheduled ids it is
    given, skips finished and unknown ones, and returns exactly the ids it cancelled."""
    pipeline = gateway.gateway.pipeline
    assert pipeline is not None
    queued = [await send(api) for _ in range(3)]
    scheduled = await send(api, send_at=(pipeline.now() + timedelta(hours=3)).isoformat())
    assert (await cancel(api, queued[0]))[0] == 200
    got = await pipeline.cancel_queued([*queued, scheduled, "req_unknown"], "list_cancelled")
    assert sorted(got) == sorted([*queued[1:], scheduled])
    for request_id in [*queued[1:], scheduled]:
        view = await status_of(api, request_id)
        assert (view["status"], view["cancel_reason"]) == ("cancelled", "list_cancelled")
    assert pipeline.queue_depth((await api.get("/v1/account"))[1]["account"]["id"]) == 0


async def _acked(gateway: RunningGateway, request_id: str) -> bool:
    """Whether the message's relay has acknowledged it."""
    assert gateway.gateway.pipeline is not None
    location = gateway.gateway.pipeline.scheduler.location(request_id)
    return location is not None and location[0] == "acked"


async def _true(value: bool) -> bool:
    """``value``, as a probe for :func:`eventually`."""
    return value


async def test_unanswered_cancel_of_unacked_message_ends_cancelled_when_relay_leaves(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """A v1.1 relay that got the send but neither acked it nor answered the cancel drops off: the
    gateway cancels the message itself instead of sending it elsewhere."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V11)
    request_id = await send(api)
    assert (await relay.recv())["id"] == request_id  # not acked
    await wait_status(api, request_id, "dispatched")
    assert (await cancel(api, request_id))[0] == 202
    assert (await relay.recv())["type"] == "cancel"
    relay.kill()
    view = await wait_status(api, request_id, "cancelled")
    assert view["cancel_reason"] == "api"
    assert gateway.gateway.pipeline is not None
    assert gateway.gateway.pipeline.scheduler.location(request_id) is None


async def test_unanswered_cancel_is_asked_again_after_reconnect(
    api: ApiClient, gateway: RunningGateway
) -> None:
    """A v1.1 relay that acked the message and lost its connection before answering the cancel
    gets the cancel again after its next welcome; its answer then ends the message cancelled."""
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V11)
    request_id = await send(api)
    await dispatched_to(relay)
    await eventually(lambda: _acked(gateway, request_id), what="acked")
    assert (await cancel(api, request_id))[0] == 202
    assert (await relay.recv())["type"] == "cancel"
    relay.kill()
    hub = gateway.gateway.hub
    assert hub is not None
    await eventually(lambda: _true(not hub.is_online(paired["device_id"])), what="offline")
    again = await RawRelay.connect(gateway.relay_url, paired["device_token"], subprotocols=V11)
    assert await again.recv() == {"type": "cancel", "id": request_id}
    await again.send({"type": "cancel_result", "id": request_id, "result": "cancelled"})
    assert await again.recv() == {"type": "report_ack", "id": request_id, "status": "cancelled"}
    view = await wait_status(api, request_id, "cancelled")
    assert view["cancel_reason"] == "api"
    await again.close()
