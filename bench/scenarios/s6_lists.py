"""S6 list fan-out: a 100,000-number recipient list queued with one call, drained through fast
relays while transactional traffic keeps flowing, then a 1,000,000-item backlog held.

1. The send account gets ``N`` recipients (100,000; quick: 1,000: distinct ``+99891…`` numbers,
   a ``city`` metadata column) by CSV import, and a list of all of them (members added 1,000
   numbers a request). Not timed: that is the recipients benchmark.
2. **queue time**: ``POST /v1/recipient-lists/queue`` with ``Hi {name}, … {city}`` (relays
   connected, no other traffic), timed by the client (the answer comes after the commit of every
   item); the gateway's RSS before and after.
3. **drain**: with the fast relays of S2 connected, an open loop of ``priority: high`` single
   sends (50/s for 15 s; quick 20/s for 1.5 s) runs once alone, then again right after the queue
   answer, while the list drains. **Drain rate** = items finished (``GET /v1/batches/{id}``) /
   seconds from the queue answer to the end of the high sends; **p99 accept and accept→relay of the high sends**
   (answer → the relay read their ``send`` frame) alone and while the list drains. Then the
   rest of the batch is cancelled (timed) and the batch must complete.
4. **backlog**: relays gone, the list queued again until ``backlog`` items wait (1,000,000;
   quick 3,000), timing each call (no relay, no other traffic) and the gateway's RSS after each;
   then a restart (time to healthy and RSS once it reloaded the backlog).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench.context import Bench
from bench.scenarios import Outcome
from bench.scenarios.s2_send import relay_count
from bench.stats import percentiles

__all__ = ["run"]

MEMBERS_PER_REQUEST = 1000
POLL = 0.25


def sizes(bench: Bench) -> tuple[int, int]:
    """(list size, backlog held in step 4)."""
    return (1_000, 3_000) if bench.quick else (100_000, 1_000_000)


def phones(n: int) -> list[str]:
    """Distinct numbers of the list (another range than the load generator's ``+99890…``)."""
    return [f"+99891{i:07d}" for i in range(n)]


async def make_list(bench: Bench, numbers: list[str]) -> str:
    """Import the recipients and make a list of them; its id."""
    assert bench.gateway is not None and bench.send_api is not None
    lines = ["name,phone,city"] + [f"Customer {i},{p},city{i % 40}" for i, p in enumerate(numbers)]
    body = ("\n".join(lines) + "\n").encode()
    headers = {"Authorization": f"Bearer {bench.send_token}", "Content-Type": "text/csv"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http,
        http.post(f"{bench.gateway.api}/v1/recipients/import", data=body, headers=headers) as resp,
    ):
        report = await resp.json()
        if resp.status != 200 or report["errors_total"]:
            raise RuntimeError(f"import: HTTP {resp.status} {str(report)[:300]}")
    status, created = await bench.send_api.call("POST", "/v1/recipient-lists", {"name": "S6 list"})
    if status != 201:
        raise RuntimeError(f"create list: HTTP {status} {created}")
    list_id: str = created["list"]["id"]
    for start in range(0, len(numbers), MEMBERS_PER_REQUEST):
        chunk = numbers[start : start + MEMBERS_PER_REQUEST]
        status, answer = await bench.send_api.call(
            "POST", f"/v1/recipient-lists/{list_id}/members", {"phones": chunk}
        )
        if status != 200:
            raise RuntimeError(f"add members: HTTP {status} {answer}")
    return list_id


async def queue(bench: Bench, list_id: str) -> tuple[float, dict[str, Any]]:
    """Queue the list once; (seconds, answer)."""
    assert bench.send_api is not None
    started = time.monotonic()
    status, answer = await bench.send_api.call(
        "POST",
        "/v1/recipient-lists/queue",
        {
            "list_id": list_id,
            "message": "Hi {name}, the {city} shop opens at 9 on Sunday.",
            "ttl_seconds": 86400,
        },
    )
    seconds = time.monotonic() - started
    if status != 200:
        raise RuntimeError(f"queue: HTTP {status} {str(answer)[:300]}")
    return seconds, answer


async def wait_completed(bench: Bench, batch_id: str, timeout: float) -> dict[str, Any]:
    """Poll ``GET /v1/batches/{id}`` until it is complete (or ``timeout``); the last batch seen."""
    assert bench.send_api is not None
    deadline = time.monotonic() + timeout
    while True:
        status, body = await bench.send_api.call("GET", f"/v1/batches/{batch_id}")
        if status != 200:
            raise RuntimeError(f"batch: HTTP {status} {body}")
        batch: dict[str, Any] = body["batch"]
        if batch["completed_at"] is not None or time.monotonic() > deadline:
            return batch
        await asyncio.sleep(POLL)  # the gateway is another process: asking is the only way


async def high_sends(bench: Bench, rate: float, duration: float, number_base: int) -> dict[str, Any]:
    """An open loop of ``priority: high`` single sends; their accept and accept→relay figures."""
    await bench.fleet_all({"cmd": "reset"})
    result = await bench.load(
        mode="sms",
        rate=rate,
        duration=duration,
        number_base=number_base,
        pool=64,
        token=bench.send_token,
        priority="high",
    )
    records = await bench.dump_records()
    for _ in range(20):  # the last sends may still be on their way to a relay (bounded: 10 s)
        if all(request_id in records for request_id, _ in result.accepted):
            break
        await asyncio.sleep(0.5)  # the fleets live in other processes: asking is the only way
        records = await bench.dump_records()
    to_relay = [
        (records[request_id][0] - answered) * 1000
        for request_id, answered in result.accepted
        if request_id in records and records[request_id][0]
    ]
    return {
        "offered_per_s": rate,
        "duration_s": duration,
        "accepted": len(result.accepted),
        "reached_relay": len(to_relay),
        "errors": result.errors,
        "accept_ms": percentiles(result.latency_ms),
        "accept_to_relay_ms": percentiles(to_relay),
    }


async def run(bench: Bench) -> Outcome:
    """The four steps; figures and table rows."""
    size, backlog = sizes(bench)
    creds = await bench.ensure_send_relays(relay_count(bench))
    await bench.restart_gateway()
    gw = bench.gateway
    assert gw is not None and bench.send_api is not None
    await bench.send_api.set_limits([c.id for c in creds])
    list_id = await make_list(bench, phones(size))

    await bench.start_fleets(creds)
    answers = await bench.fleet_all({"cmd": "connect", "timeout": 60})
    if not all(a["ok"] for a in answers):
        raise RuntimeError(f"relays did not all connect: {answers}")
    rate, duration = (20.0, 1.5) if bench.quick else (50.0, 15.0)
    baseline = await high_sends(bench, rate, duration, 0)

    rss_before = gw.rss_kib()
    queue_seconds, answer = await queue(bench, list_id)
    queued_at = time.monotonic()
    rss_queued = gw.rss_kib()
    if answer["queued"] != size:
        raise RuntimeError(f"queued {answer['queued']} of {size}: {str(answer)[:300]}")
    batch_id = answer["batch_id"]
    during = await high_sends(bench, rate, duration, 100_000)  # the list drains meanwhile
    status, body = await bench.send_api.call("GET", f"/v1/batches/{batch_id}")
    drain_seconds = time.monotonic() - queued_at
    counts = body["batch"]["counts"]
    drained = counts["sent"] + counts["delivered"] + counts["failed"]
    started = time.monotonic()
    status, cancel = await bench.send_api.call("POST", f"/v1/batches/{batch_id}/cancel")
    cancel_seconds = time.monotonic() - started
    if status != 200:
        raise RuntimeError(f"cancel: HTTP {status} {cancel}")
    batch = await wait_completed(bench, batch_id, timeout=120)
    await bench.stop_fleets()

    backlog_queues = max(1, backlog // size)
    queue_times, rss_growth = [], []
    for _ in range(backlog_queues):
        seconds, _ = await queue(bench, list_id)
        queue_times.append(round(seconds, 2))
        rss_growth.append(gw.rss_kib())
    rss_backlog = gw.rss_kib()
    restart_seconds = await bench.restart_gateway()
    rss_restarted = gw.rss_kib()

    out = Outcome("ok")
    out.figures = {
        "list_size": size,
        "queue_seconds": round(queue_seconds, 3),
        "gateway_rss_kib": {
            "before_queue": rss_before,
            "after_queue": rss_queued,
            "backlog": rss_backlog,
            "after_restart_with_backlog": rss_restarted,
        },
        "relays": len(creds),
        "list_rate_setting": bench.settings.get("RELAYGATE_LIST_RATE", "200 (default)"),
        "drain_window_seconds": round(drain_seconds, 2),
        "drained_in_window": drained,
        "drain_per_s": round(drained / drain_seconds) if drain_seconds else None,
        "cancelled": cancel["cancelled"],
        "cancel_seconds": round(cancel_seconds, 3),
        "batch": batch,
        "high_sends_alone": baseline,
        "high_sends_while_draining": during,
        "backlog_items": backlog_queues * size,
        "backlog_queue_seconds": queue_times,
        "backlog_rss_kib_after_each_queue": rss_growth,
        "restart_seconds_with_backlog": round(restart_seconds, 2),
    }
    out.rows = [
        (
            f"queue {size:,} numbers (one call)",
            f"{queue_seconds:.2f} s",
            f"RSS +{rss_queued - rss_before:,} KiB",
        ),
        (
            f"drain through {len(creds)} relays",
            f"{out.figures['drain_per_s']}/s",
            f"{drained:,} finished in the {drain_seconds:.1f} s of the high sends",
        ),
        (
            "cancel the rest",
            f"{cancel['cancelled']:,} in {cancel_seconds:.2f} s",
            f"batch.completed at {batch['completed_at']}",
        ),
        (
            f"high sends at {rate:.0f}/s: p99 accept / accept→relay, alone → while draining",
            f"{baseline['accept_ms']['p99']} / {baseline['accept_to_relay_ms']['p99']} ms → "
            f"{during['accept_ms']['p99']} / {during['accept_to_relay_ms']['p99']} ms",
            f"{during['reached_relay']} of {during['accepted']} reached a relay, errors {during['errors'] or 0}",
        ),
        (
            f"RSS with {backlog_queues * size:,} items queued",
            f"{rss_backlog:,} KiB",
            f"after restart {rss_restarted:,} KiB (healthy in {restart_seconds:.1f} s)",
        ),
    ]
    return out
