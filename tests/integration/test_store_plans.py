"""The hot transition statements look their ids up in the primary key even when the table's
statistics are stale: a list of 20,000 items queued after the last ANALYZE, when the statistics
say almost nothing is queued (what autovacuum leaves for up to a minute after every big list)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from store import send_checks
from store import transitions as sql
from tests.harness import DatabaseFactory

ITEMS = 20_000


def _scans(plan: Any) -> list[tuple[str, str | None]]:
    """(index or relation scanned, its index condition) of every scan node on ``messages``."""
    found: list[tuple[str, str | None]] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == "messages" and "Scan" in node["Node Type"]:
            found.append((node.get("Index Name") or node["Node Type"], node.get("Index Cond")))
        stack.extend(node.get("Plans", []))
    return found


async def _plan(conn: asyncpg.Connection[Any], statement: str, *args: Any) -> list[tuple[str, str | None]]:
    async with conn.transaction():
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + statement, *args)
    return _scans(json.loads(plan)[0]["Plan"])


@pytest.fixture
async def stale(databases: DatabaseFactory) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A database whose statistics were taken before 20,000 list items were queued."""
    conn = await asyncpg.connect(await databases.create())
    await conn.execute(
        """INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority, status,
               expires_at, queued_at)
           SELECT 'req_done' || i, 'acc_1', 'sms', '+998901234567', 'x', 'GSM-7', 1, 2, 'delivered',
               now() + interval '1 day', now() FROM generate_series(1, 2000) i"""
    )
    await conn.execute("ANALYZE messages")
    await conn.execute(
        """INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
               expires_at, queued_at, batch_id)
           SELECT 'req_list' || lpad(i::text, 6, '0'), 'acc_1', 'list', '+998901234567', 'x', 'GSM-7', 1, 3,
               now() + interval '1 day', now(), 'bat_1' FROM generate_series(1, $1::int) i""",
        ITEMS,
    )
    yield conn
    await conn.close()


async def test_transitions_probe_the_primary_key_with_stale_statistics(
    stale: asyncpg.Connection[Any],
) -> None:
    """dispatched, acked, requeued and sent each probe ``messages_pkey`` per id; the same guard
    written as a plain ``IN`` (the control) reads the whole unfinished index instead, which is
    what made a dispatch take 70-500 ms while a 100,000-item list drained."""
    ids = [f"req_list{i:06d}" for i in (5, 500, 5000, 10_000, 19_999)]
    devices = ["dev_1"] * len(ids)
    now = [datetime.now(UTC)] * len(ids)
    plans = {
        "dispatched": await _plan(stale, sql._DISPATCHED, ids, devices, [1] * len(ids), now),
        "acked": await _plan(stale, sql._ACKED, ids, devices, now),
        "requeued": await _plan(stale, sql._REQUEUED, ids, devices, now, [None] * 5, [None] * 5),
        "sent": await _plan(stale, sql._SENT, ids, devices, now, [None] * 5),
        "released": await _plan(stale, sql._RELEASE, ids),
    }
    for name, scans in plans.items():
        assert [index for index, _ in scans] == ["messages_pkey"] and scans[0][1] is not None, (name, scans)

    control = sql._SENT.replace(
        sql._status_in("queued", "dispatched"), "m.status IN ('queued', 'dispatched')"
    )
    assert control != sql._SENT
    scans = await _plan(stale, control, ids, devices, now, [None] * 5)
    assert scans == [("messages_unfinished_idx", None)], scans  # the whole index, joined afterwards


def _indexes(plan: Any) -> dict[str, set[str]]:
    """Relation → the scans of it in ``plan`` (index names, or the node type of other scans)."""
    found: dict[str, set[str]] = {}
    stack = [plan]
    while stack:
        node = stack.pop()
        if "Relation Name" in node and "Scan" in node["Node Type"]:
            found.setdefault(node["Relation Name"], set()).add(node.get("Index Name") or node["Node Type"])
        stack.extend(node.get("Plans", []))
    return found


async def test_the_send_checks_probe_the_indexes(databases: DatabaseFactory) -> None:
    """The send checks' read looks each number up in the directory's unique (account, phone)
    index and in the messages' (account, number, id) index: never a scan or a hash of every
    opted-out recipient (what an ``EXISTS`` became). It answers only the keys with a fact, and
    reads the messages only of a key with a window floor."""
    conn = await asyncpg.connect(await databases.create())
    try:
        await conn.execute(
            """INSERT INTO recipients (id, account_id, name, phone, name_key, opted_out)
               SELECT 'rcp_' || i, 'acc_' || (i % 20), 'n', '+99890' || lpad(i::text, 7, '0'), 'n', i % 3 = 0
               FROM generate_series(1, 5000) i"""
        )
        await conn.execute("ANALYZE recipients")
        for keys in (1, 40):
            args = (["acc_1"] * keys, [f"+99890{k:07d}" for k in range(keys)], ["req_0"] * keys)
            plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + send_checks._NUMBER_FACTS, *args)
            scans = _indexes(json.loads(plan)[0]["Plan"])
            expected = {
                "recipients": {"recipients_account_id_phone_key"},
                "messages": {"messages_account_to_idx"},
            }
            assert scans == expected, (keys, scans)
        facts = await send_checks.number_facts(
            conn,
            [
                ("acc_3", "+998900000003", "req_0"),
                ("acc_1", "+998900000001", "req_0"),
                ("acc_2", "+998900000041", "req_0"),
            ],
        )
        assert facts == {("acc_3", "+998900000003", "req_0"): send_checks.NumberFacts(True, ())}
        await conn.execute(
            """INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                   expires_at, queued_at)
               VALUES ('req_01M8W00000000000000000000A', 'acc_1', 'sms', '+998900000001', 'x', 'GSM-7', 1, 2,
                   now() + interval '1 day', now())"""
        )
        with_window, opt_out_only = ("acc_1", "+998900000001", "req_0"), ("acc_1", "+998900000001", None)
        facts = await send_checks.number_facts(conn, [with_window, opt_out_only])
        # the window is read only when asked for (a floor): an opt-out check alone reads no message
        assert facts == {with_window: send_checks.NumberFacts(False, ("req_01M8W00000000000000000000A",))}
    finally:
        await conn.close()
