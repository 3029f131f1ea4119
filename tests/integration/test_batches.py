"""List sends through the real API and hand-driven relays: one call queues a whole list, each
number its own message with its own request id; placeholders, skipped members, progress,
cancel, ``batch.completed`` exactly once, idempotency, cross-account isolation, bad input."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.harness import ApiClient, RunningGateway, eventually, make_account, parse_time
from tests.relay_client import RawRelay, pair_relay


async def add_recipient(api: ApiClient, name: str, phone: str, **extra: Any) -> str:
    """Create a recipient; its id."""
    status, body, _ = await api.post("/v1/recipients", json={"name": name, "phone": phone, **extra})
    assert status == 201, body
    return str(body["recipient"]["id"])


async def make_list(api: ApiClient, ids: list[str], name: str = "customers") -> str:
    """Create a list with these members; its id."""
    status, body, _ = await api.post("/v1/recipient-lists", json={"name": name, "recipient_ids": ids})
    assert status == 201, body
    return str(body["list"]["id"])


async def queue(api: ApiClient, list_id: str, message: str, **extra: Any) -> tuple[int, Any]:
    """POST /v1/recipient-lists/queue."""
    status, body, _ = await api.post(
        "/v1/recipient-lists/queue", json={"list_id": list_id, "message": message, **extra}
    )
    return status, body


async def batch(api: ApiClient, batch_id: str) -> dict[str, Any]:
    """GET /v1/batches/{id}."""
    status, body, _ = await api.get(f"/v1/batches/{batch_id}")
    assert status == 200, body
    return dict(body["batch"])


async def events_of(database_url: str, event_type: str) -> list[dict[str, Any]]:
    """The outbox's events of one type, oldest first."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE type = $1 ORDER BY id", event_type)
    finally:
        await conn.close()
    return [json.loads(r["data"]) for r in rows]


async def test_list_queued_rendered_sent_and_completed(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """Every eligible member becomes its own message with its own text and request id; opted-out
    and policy-refused numbers are skipped and named; the batch completes once, with its event."""
    alisher = await add_recipient(api, "Alisher", "+998901234567", metadata={"city": "Tashkent"})
    olga = await add_recipient(api, "Ольга", "+998907654321", metadata={"city": "Самарканд"})
    bob = await add_recipient(api, "Bob", "+998901112233")  # no city: empty value
    stopped = await add_recipient(api, "Stopped", "+998909998877", opted_out=True)
    premium = await add_recipient(api, "Premium", "+447011223344")  # personal number: refused
    list_id = await make_list(api, [alisher, olga, bob, stopped, premium])

    status, answer = await queue(api, list_id, "Hi {name}, {city} shop {{open}}", metadata={"c": 1})
    assert status == 200, answer
    assert answer["ok"] is True and answer["status"] == "queued" and answer["queued"] == 3
    assert answer["batch_id"].startswith("bat_") and answer["queued_at"].endswith("Z")
    assert sorted((s["recipient_id"], s["phone"], s["reason"]) for s in answer["skipped"]) == sorted(
        [(stopped, "+998909998877", "opted_out"), (premium, "+447011223344", "invalid_number")]
    )
    batch_id = answer["batch_id"]

    status, page, _ = await api.get("/v1/messages", params={"batch_id": batch_id})
    assert status == 200, page
    items = page["messages"]
    assert len(items) == 3 and len({m["request_id"] for m in items}) == 3
    assert {m["kind"] for m in items} == {"list"} and {m["priority"] for m in items} == {"low"}
    assert all(m["metadata"] == {"c": 1} for m in items)
    assert (await batch(api, batch_id))["counts"]["queued"] == 3

    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    texts: dict[str, str] = {}
    sent_ids = []
    for _ in range(3):
        frame = await relay.recv()
        assert frame["type"] == "send", frame
        texts[frame["to"]] = frame["message"]
        sent_ids.append(frame["id"])
        await relay.send({"type": "ack", "id": frame["id"]})
        await relay.send(
            {"type": "report", "id": frame["id"], "status": "sent", "at": "2026-11-23T10:00:00Z"}
        )
    assert texts == {
        "+998901234567": "Hi Alisher, Tashkent shop {open}",
        "+998907654321": "Hi Ольга, Самарканд shop {open}",
        "+998901112233": "Hi Bob,  shop {open}",
    }

    async def completed() -> dict[str, Any] | None:
        b = await batch(api, batch_id)
        return b if b["completed_at"] is not None else None

    done = await eventually(completed)
    assert done["total"] == 3 and done["skipped"] == 2 and done["counts"]["sent"] == 3
    events = [e for e in await events_of(database_url, "batch.completed") if e["batch_id"] == batch_id]
    assert len(events) == 1 and events[0]["counts"]["sent"] == 3 and events[0]["list_id"] == list_id
    # Delivered reports afterwards move the counts, not the completion.
    for message_id in sent_ids:
        await relay.send(
            {"type": "report", "id": message_id, "status": "delivered", "at": "2026-11-23T10:00:01Z"}
        )

    async def delivered() -> bool:
        return bool((await batch(api, batch_id))["counts"]["delivered"] == 3)

    await eventually(delivered)
    events = [e for e in await events_of(database_url, "batch.completed") if e["batch_id"] == batch_id]
    assert len(events) == 1
    await relay.close()


async def test_list_queued_with_send_at_waits_then_goes(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """A list queued with ``send_at``: answered ``scheduled``, every item ``scheduled`` (a relay
    online gets nothing) until then, TTL counted from it; then each item goes and the batch
    completes. Cancelling a scheduled list cancels its waiting items."""
    ids = [await add_recipient(api, f"P{i}", f"+99890123450{i}") for i in range(3)]
    list_id = await make_list(api, ids)
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    status, answer = await queue(api, list_id, "Hi {name}", send_at=send_at.isoformat(), ttl_seconds=60)
    assert status == 200 and answer["status"] == "scheduled" and answer["queued"] == 3, answer
    assert abs(parse_time(answer["send_at"]) - send_at) < timedelta(milliseconds=1), answer
    batch_id = answer["batch_id"]
    counts = (await batch(api, batch_id))["counts"]
    assert counts["scheduled"] == 3 and counts["queued"] == 0, counts
    _, page, _ = await api.get("/v1/messages", params={"batch_id": batch_id})
    assert {m["status"] for m in page["messages"]} == {"scheduled"}
    assert all(parse_time(m["expires_at"]) >= send_at + timedelta(seconds=59) for m in page["messages"])
    await asyncio.sleep(1.0)
    assert (await batch(api, batch_id))["counts"]["scheduled"] == 3  # nothing before send_at
    for _ in range(3):
        frame = await relay.recv()
        assert frame["type"] == "send" and datetime.now(UTC) >= send_at - timedelta(milliseconds=50), frame
        await relay.send({"type": "ack", "id": frame["id"]})
        await relay.send(
            {"type": "report", "id": frame["id"], "status": "sent", "at": "2026-11-23T10:00:00Z"}
        )

    async def completed() -> dict[str, Any] | None:
        b = await batch(api, batch_id)
        return b if b["completed_at"] is not None else None

    assert (await eventually(completed))["counts"]["sent"] == 3
    # a second scheduled list, cancelled while it waits
    status, later = await queue(
        api, list_id, "Later {name}", send_at=(send_at + timedelta(hours=1)).isoformat()
    )
    assert status == 200 and later["status"] == "scheduled", later
    status, body, _ = await api.post(f"/v1/batches/{later['batch_id']}/cancel")
    assert status == 200 and body["cancelled"] == 3 and body["batch"]["completed_at"] is not None, body
    assert body["batch"]["counts"]["cancelled"] == 3 and body["batch"]["counts"]["scheduled"] == 0
    await relay.close()


async def test_encoding_and_segments_match_single_sends(api: ApiClient, database_url: str) -> None:
    """Each item's encoding and segment count are those a single send of its text gets."""
    from gateway.sending.sms_text import analyse

    long_name = "€" * 100  # two septets each: 200 + text > 160 → 2 segments
    ids = [
        await add_recipient(api, "Ali", "+998901234567"),
        await add_recipient(api, long_name, "+998907654321"),
        await add_recipient(api, "Ольга", "+998901112233"),
        await add_recipient(api, "😀 smile", "+998901112244"),
    ]
    list_id = await make_list(api, ids)
    status, answer = await queue(api, list_id, "Dear {name}, your parcel is ready.")
    assert status == 200 and answer["queued"] == 4, answer
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT body, encoding, segments FROM messages WHERE batch_id = $1", answer["batch_id"]
        )
    finally:
        await conn.close()
    assert len(rows) == 4
    for r in rows:
        info = analyse(r["body"])
        assert (r["encoding"], r["segments"]) == (info.encoding, info.segments), r["body"]


async def test_unknown_placeholder_and_bad_input_refused(api: ApiClient, database_url: str) -> None:
    """Unknown placeholders are named in a validation_error; a blank text, another account's or
    a made-up list id, and bad fields are refused; none of it queues anything."""
    rid = await add_recipient(api, "Ali", "+998901234567", metadata={"city": "Tashkent"})
    list_id = await make_list(api, [rid])
    status, body = await queue(api, list_id, "Hi {name} from {town} and {zip}")
    assert status == 422 or status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"]["placeholders"] == ["town", "zip"]
    for message in ("{name}", "   {name} "):
        status, body = await queue(api, list_id, message)
        assert body["error"]["code"] == "validation_error", body
    status, body = await queue(api, "lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X", "hello")
    assert body["error"]["code"] == "not_found", body
    status, body = await queue(api, list_id, "hello", priority="urgent")
    assert body["error"]["code"] == "validation_error", body
    status, body = await queue(api, list_id, "hello", device_id="dev_nope")
    assert body["error"]["code"] == "invalid_device", body
    _, other_token = await make_account(database_url, "other")
    other = api.with_token(other_token)
    status, body = await queue(other, list_id, "hello")
    assert body["error"]["code"] == "not_found", body
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 0
        assert await conn.fetchval("SELECT count(*) FROM batches") == 0
    finally:
        await conn.close()


async def test_cancel_and_isolation(api: ApiClient, database_url: str) -> None:
    """Cancel turns every still queued item into cancelled (one message.cancelled each) and
    completes the batch once; another account sees no batch and cannot cancel it."""
    ids = [await add_recipient(api, f"R{i}", f"+99890123450{i}") for i in range(5)]
    list_id = await make_list(api, ids)
    status, answer = await queue(api, list_id, "hello {name}")
    assert status == 200, answer
    batch_id = answer["batch_id"]
    _, other_token = await make_account(database_url, "other")
    other = api.with_token(other_token)
    status, body, _ = await other.get(f"/v1/batches/{batch_id}")
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, body, _ = await other.post(f"/v1/batches/{batch_id}/cancel")
    assert status == 404, body
    status, body, _ = await other.get("/v1/messages", params={"batch_id": batch_id})
    assert status == 200 and body["messages"] == [], body

    status, body, _ = await api.post(f"/v1/batches/{batch_id}/cancel")
    assert status == 200, body
    assert body["cancelled"] == 5 and body["batch"]["counts"]["cancelled"] == 5
    assert body["batch"]["completed_at"] is not None and body["batch"]["cancelled_at"] is not None
    status, body, _ = await api.post(f"/v1/batches/{batch_id}/cancel")
    assert status == 200 and body["cancelled"] == 0, body
    cancelled = [e for e in await events_of(database_url, "message.cancelled") if e["status"] == "cancelled"]
    assert len(cancelled) == 5 and {e["cancel_reason"] for e in cancelled} == {"batch_cancelled"}
    completed = [e for e in await events_of(database_url, "batch.completed") if e["batch_id"] == batch_id]
    assert len(completed) == 1 and completed[0]["counts"]["cancelled"] == 5
    status, page, _ = await api.get("/v1/messages", params={"batch_id": batch_id, "status": "cancelled"})
    assert status == 200 and len(page["messages"]) == 5, page


async def test_idempotency_key_replays_and_conflicts(api: ApiClient, database_url: str) -> None:
    """The same key and body answer the first batch again (nothing queued twice, also when
    sent concurrently); the same key with another body is a conflict."""
    ids = [await add_recipient(api, f"R{i}", f"+99890123460{i}") for i in range(3)]
    list_id = await make_list(api, ids)
    body = {"list_id": list_id, "message": "hello"}
    headers = {"Idempotency-Key": "list-1"}
    answers = await asyncio.gather(
        *(api.post("/v1/recipient-lists/queue", json=body, headers=headers) for _ in range(4))
    )
    assert {a[0] for a in answers} == {200}, answers
    assert len({a[1]["batch_id"] for a in answers}) == 1
    status, again, _ = await api.post("/v1/recipient-lists/queue", json=body, headers=headers)
    assert status == 200 and again == answers[0][1]
    status, clash, _ = await api.post(
        "/v1/recipient-lists/queue", json={**body, "message": "other"}, headers=headers
    )
    assert status == 409 and clash["error"]["code"] == "conflict", clash
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM batches") == 1
        assert await conn.fetchval("SELECT count(*) FROM messages") == 3
    finally:
        await conn.close()


async def test_empty_list_completes_at_once(api: ApiClient, database_url: str) -> None:
    """A list with nothing to queue makes a batch of 0 items, complete at once with its event."""
    rid = await add_recipient(api, "Stopped", "+998901234567", opted_out=True)
    list_id = await make_list(api, [rid])
    status, answer = await queue(api, list_id, "hello")
    assert status == 200 and answer["queued"] == 0 and answer["skipped_total"] == 1, answer
    b = await batch(api, answer["batch_id"])
    assert b["total"] == 0 and b["completed_at"] is not None
    assert len(await events_of(database_url, "batch.completed")) == 1


async def test_scopes_and_expired_subscription(database_url: str, gateway: RunningGateway) -> None:
    """Queueing needs messages.send and an active subscription; reading a batch messages.read."""
    from datetime import UTC, datetime, timedelta

    async with aiohttp.ClientSession() as session:
        _, token = await make_account(database_url, "ro", scopes=["recipients.read", "messages.read"])
        api = ApiClient(session, gateway.base_url, token)
        status, body = await queue(api, "lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X", "hello")
        assert status == 403 and body["error"]["code"] == "forbidden", body
        _, token = await make_account(database_url, "old", expires=datetime.now(UTC) - timedelta(days=1))
        api = ApiClient(session, gateway.base_url, token)
        status, body = await queue(api, "lst_01HV4Z8K2M3N4P5Q6R7S8T9V0X", "hello")
        assert body["error"]["code"] == "subscription_expired", body


@pytest.mark.parametrize("path", ["/v1/batches/nope", "/v1/batches/bat_01HV4Z8K2M3N4P5Q6R7S8T9V0Y"])
async def test_unknown_batch_is_not_found(api: ApiClient, path: str) -> None:
    """A made-up batch id is not_found on read and cancel."""
    status, body, _ = await api.get(path)
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, body, _ = await api.post(path + "/cancel")
    assert status == 404, body


async def test_list_items_are_taken_in_at_the_list_rate(databases: Any) -> None:
    """RELAYGATE_LIST_RATE bounds how fast list items enter the queue (20/s: 40 items need
    at least 1.5 s even with idle fast relays), while a high send goes at once."""
    import time

    from gateway.sim.relay import RelayFleet
    from tests.harness import fleet_options, start_gateway

    database_url = await databases.create()
    running = await start_gateway(database_url, list_rate=20.0)
    _, token = await make_account(database_url, region="UZ")
    fleet = await RelayFleet.start(fleet_options(running, token, 2))
    try:
        async with aiohttp.ClientSession() as session:
            api = ApiClient(session, running.base_url, token)
            for relay in fleet.relays:
                await api.request("PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000})
            ids = [await add_recipient(api, f"R{i}", f"+9989012345{i:02d}") for i in range(40)]
            list_id = await make_list(api, ids)
            started = time.monotonic()
            status, answer = await queue(api, list_id, "hello {name}")
            assert status == 200 and answer["queued"] == 40, answer
            status, sent, _ = await api.post(
                "/v1/sms/send", json={"to": "+998909999999", "message": "code", "priority": "high"}
            )
            assert status == 200, sent

            async def high_sent() -> bool:
                return any(s["id"] == sent["request_id"] for s in fleet.sent)

            await eventually(high_sent, timeout=5)
            high_at = time.monotonic() - started

            async def completed() -> dict[str, Any] | None:
                b = await batch(api, answer["batch_id"])
                return b if b["completed_at"] is not None else None

            await eventually(completed, timeout=30)
            elapsed = time.monotonic() - started
        assert elapsed >= 1.5, elapsed
        assert high_at < elapsed, (high_at, elapsed)
    finally:
        await fleet.stop()
        await running.stop()


async def test_batch_completes_when_an_item_read_in_had_finished_meanwhile(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """An item the feed read in as queued, but that a cancel finished in the database before the
    scheduler held it (the cancel's transaction could not count it for the batch), is let go when
    its dispatch changes nothing: no frame for it, and the batch still completes."""
    ids = [await add_recipient(api, f"Q{i}", f"+99890123460{i}") for i in range(2)]
    list_id = await make_list(api, ids)
    status, answer = await queue(api, list_id, "hello {name}")
    assert status == 200 and answer["queued"] == 2, answer
    batch_id = answer["batch_id"]

    async def read_in() -> bool:
        status, body, _ = await api.get("/v1/queue")
        return status == 200 and body["queue"]["depth"]["low"] == 2

    await eventually(read_in)  # no relay yet: both wait in the scheduler
    status, page, _ = await api.get("/v1/messages", params={"batch_id": batch_id})
    first, _ = sorted(m["request_id"] for m in page["messages"])
    conn = await asyncpg.connect(database_url)
    try:  # the end state of that race: cancelled in the database, held in memory, not counted
        await conn.execute(
            "UPDATE messages SET status = 'cancelled', cancelled_at = now(), cancel_reason = 'batch_cancelled'"
            " WHERE id = $1",
            first,
        )
    finally:
        await conn.close()
    status, body, _ = await api.post(f"/v1/batches/{batch_id}/cancel")
    assert status == 200 and body["cancelled"] == 1 and body["batch"]["completed_at"] is None, body

    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    try:

        async def completed() -> dict[str, Any] | None:
            b = await batch(api, batch_id)
            return b if b["completed_at"] is not None else None

        done = await eventually(completed)
        assert done["counts"]["cancelled"] == 2, done
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(relay.recv(), 0.3)  # nothing was sent for either
    finally:
        await relay.close()
    events = [e for e in await events_of(database_url, "batch.completed") if e["batch_id"] == batch_id]
    assert len(events) == 1
