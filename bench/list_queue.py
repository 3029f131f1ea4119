"""``python -m bench.list_queue [--rows N] [--repeat N] [--explain]``: the CSV import and the
queueing of a whole list, in process, without HTTP.

Starts an embedded PostgreSQL in a temp folder (or uses ``DATABASE_URL``), applies the schema,
makes an account, then ``--repeat`` times (each on a fresh account, so every import is of new
rows): imports ``--rows`` generated recipients with the gateway's own import code (timed: what
``POST /v1/recipients/import`` and ``relaygate recipients import`` run after reading the
body), makes a list of all of them, and queues it with the list-send code (timed: one
transaction, committed, as ``POST /v1/recipient-lists/queue`` does). Prints the best and every
time. ``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the queueing statement (in a
transaction rolled back) so that one can see where its time goes.

It isolates the two database-bound steps of S6 and of the recipients benchmark from the HTTP
layer and from the other scenarios' traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.recipients_search import generate_csv
from gateway.access.accounts import create_account
from gateway.recipients import lists
from gateway.recipients.batches import QueueSpec, queue_list
from gateway.recipients.importer import CsvReader, import_file
from gateway.timefmt import utcnow
from scheduler import Priority
from store import batches as batches_store
from store.database import apply_schema, create_pool
from store.embedded import embedded_database_url

__all__ = ["main"]

MESSAGE = "Hi {name}, the {city} shop opens at 9 on Sunday."


async def _one(pool: Any, rows: int, data: bytes, explain: bool) -> tuple[float, float]:
    """Import and queue once on a fresh account; (import seconds, queue seconds)."""
    async with pool.acquire() as conn:
        account, _ = await create_account(conn, f"bench-{time.time_ns()}")
        started = time.perf_counter()
        reader = await asyncio.to_thread(CsvReader, data, None)
        report = await import_file(conn, account.id, reader, all_or_nothing=False)
        imported = time.perf_counter() - started
        assert report.imported == rows, report
        created = await lists.create_list(conn, account.id, "bench", [])
        await conn.execute(
            "INSERT INTO recipient_list_members (list_id, recipient_id) "
            "SELECT $1, id FROM recipients WHERE account_id = $2",
            created.id,
            account.id,
        )
        await conn.execute("ANALYZE recipient_list_members")
        spec = QueueSpec(
            list_id=created.id,
            text=MESSAGE,
            priority=Priority.LOW,
            ttl_seconds=86400,
            device_id=None,
            metadata=None,
        )
        if explain:
            await _explain(conn, pool, account, spec)
        started = time.perf_counter()
        async with conn.transaction():
            answer = await queue_list(conn, account, spec, now=utcnow(), policy_db=pool)
        queued = time.perf_counter() - started
        assert answer.queued == rows, answer
    return imported, queued


async def _explain(conn: Any, pool: Any, account: Any, spec: QueueSpec) -> None:
    """EXPLAIN ANALYZE of the queueing statement (everything rolled back)."""
    captured: list[dict[str, Any]] = []
    original = batches_store.queue_items

    async def capture(_conn: Any, **kwargs: Any) -> int:
        captured.append(kwargs)
        return 0

    batches_store.queue_items = capture  # type: ignore[assignment,unused-ignore]
    try:
        tr = conn.transaction()
        await tr.start()
        try:
            await queue_list(conn, account, spec, now=utcnow(), policy_db=pool)
        finally:
            await tr.rollback()
    finally:
        batches_store.queue_items = original
    kw = captured[0]
    args = [kw[k] for k in ("id_prefix", "account_id", "list_id", "literals", "keys", "batch_id", "refused")]
    args += [kw["priority"], kw["device_id"], None, kw["expires_at"], kw["queued_at"], kw["encoding"]]
    args += [kw["segments"], kw["gsm_pattern"], kw["extended_characters"], kw["send_at"]]
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(
            batches_store._INSERT, kw["batch_id"], kw["account_id"], kw["list_id"], kw["queued_at"], None
        )
        await conn.execute(batches_store._QUEUE_WORK_MEM)
        sql = batches_store._QUEUE_ITEMS.replace("{body}", batches_store._render(kw["keys"]))
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, VERBOSE) " + sql, *args)
        print("\n".join(r[0] for r in plan))
    finally:
        await tr.rollback()


async def run(rows: int, repeat: int, explain: bool) -> None:
    """The whole benchmark."""
    tmp = tempfile.mkdtemp(prefix="rg-bench-lq-")
    # registered before the embedded server's own exit hook, so it runs after that stopped it
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = await asyncio.to_thread(embedded_database_url, Path(tmp))
    pool = await create_pool(url, min_size=2, max_size=4)
    try:
        async with pool.acquire() as conn:
            await apply_schema(conn)
        data = generate_csv(rows)
        results = []
        for i in range(repeat):
            results.append(await _one(pool, rows, data, explain and i == 0))
            print(f"run {i + 1}: import {results[-1][0]:.2f} s, queue {results[-1][1]:.2f} s", flush=True)
    finally:
        await pool.close()
    print(
        f"best of {repeat}: import {rows:,} rows {min(r[0] for r in results):.2f} s, "
        f"queue {rows:,} items {min(r[1] for r in results):.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.list_queue")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    uvloop.run(run(args.rows, args.repeat, args.explain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
