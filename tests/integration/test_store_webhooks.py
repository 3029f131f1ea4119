"""store/webhooks.py on real PostgreSQL: fan-out, taking due deliveries and recording a batch of
attempts are one statement each and leave exactly the rows the one-by-one writes did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.events import WebhookTestData, emit
from store import deliveries
from store import webhooks as store
from store.database import connect
from tests.harness import make_account


async def test_fan_out_take_and_record_in_batches(database_url: str) -> None:
    """Events fan out to subscribed enabled endpoints only and are marked; due deliveries come
    with their event and endpoint and the next due time; one record call writes every attempt
    and moves each delivery to its own state."""
    account_id, _ = await make_account(database_url)
    conn = await connect(database_url)
    try:
        endpoints = []
        for n, enabled in enumerate([True, True, False]):
            endpoint = await store.insert_endpoint(
                conn,
                endpoint_id=f"whk_{n:026d}",
                account_id=account_id,
                url=f"https://example.com/{n}",
                events=["webhook.test"],
                description="",
                secret="whsec_c2VjcmV0",
                batch_max_events=10 if n == 1 else None,
                batch_max_wait_ms=250 if n == 1 else None,
            )
            if not enabled:
                await store.update_endpoint(
                    conn,
                    endpoint_id=endpoint.id,
                    account_id=account_id,
                    url=None,
                    events=None,
                    enabled=False,
                    description=None,
                    set_batch=False,
                    batch_max_events=None,
                    batch_max_wait_ms=None,
                )
            endpoints.append(endpoint.id)
        event_ids = [
            await emit(conn, account_id, "webhook.test", WebhookTestData(webhook_id="whk_x", message=str(i)))
            for i in range(3)
        ]
        assert await store.fan_out(conn, limit=2) == 2  # oldest first, at most the limit
        assert await store.fan_out(conn, limit=500) == 1
        assert await store.fan_out(conn, limit=500) == 0  # all marked
        assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 6  # 3 events x 2 enabled

        taken, next_due = await store.take_due(conn, limit=4, exclude=[])
        assert len(taken) == 4 and next_due is not None and next_due <= datetime.now(UTC)  # more are due
        first = taken[0]
        assert first.event_id in event_ids and first.endpoint_id in endpoints[:2] and first.active
        assert (
            first.type == "webhook.test"
            and '"message"' in first.data_json
            and first.secret == "whsec_c2VjcmV0"
        )
        batched = next(r for r in taken if r.endpoint_id == endpoints[1])
        assert (batched.batch_max_events, batched.batch_max_wait_ms) == (10, 250)

        later = datetime.now(UTC) + timedelta(minutes=5)
        started = datetime.now(UTC)
        statuses = ["pending", "succeeded", "failed", "blocked"]
        records = [
            store.AttemptRecord(
                delivery_id=row.id,
                status=status,
                next_attempt_at=later if status == "pending" else None,
                started_at=started,
                trigger="scheduled",
                duration_ms=12,
                http_status=500
                if status in ("pending", "failed")
                else (200 if status == "succeeded" else None),
                error="blocked: 10.0.0.1" if status == "blocked" else None,
                response_excerpt="nope" if status == "pending" else None,
                outcome={"pending": "failed"}.get(status, status),
            )
            for row, status in zip(taken, statuses, strict=True)
        ]
        assert await store.record_attempts(conn, [records[:1], records[1:]]) == [None, None]
        for due, record in zip(taken, records, strict=True):
            found = await deliveries.get_delivery(conn, delivery_id=due.id, account_id=account_id)
            assert found is not None and found.delivery.status == record.status
            assert found.delivery.attempts == 1 and found.delivery.next_attempt_at == record.next_attempt_at
            [attempt] = await deliveries.delivery_attempts(conn, delivery_id=due.id)
            assert (attempt.attempt, attempt.outcome, attempt.http_status, attempt.error) == (
                1,
                record.outcome,
                record.http_status,
                record.error,
            )
        rest, next_due = await store.take_due(conn, limit=10, exclude=[])
        assert len(rest) == 2 and {r.id for r in rest}.isdisjoint(r.id for r in taken)
        assert next_due == later  # the retry, not yet due, tells how long to sleep
        _, none_left = await store.take_due(conn, limit=10, exclude=[r.id for r in rest] + [taken[0].id])
        assert none_left is None
    finally:
        await conn.close()
