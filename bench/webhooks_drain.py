"""``python -m bench.webhooks_drain [--rate N] [--seconds S] [--out DIR]``: the webhook dispatcher
alone, without the send path around it.

Starts a gateway (embedded PostgreSQL in a temp folder), makes an account and an endpoint for
``message.sent`` on a local receiver, then writes ``--rate`` events per second for ``--seconds``
into the outbox (``store.outbox.insert_events``, 10 chunks a second, as the send pipeline's group
commit would) and waits until every event arrived. Reports, per phase: events/s delivered,
commit → received latency p50/p99/max (from the time in the event id), and the CPU of the gateway
and of PostgreSQL per 1,000 events. A second phase repeats it with a batched endpoint
(``"batch": {"max_events": 50, "max_wait_ms": 100}``) when the gateway supports it. Writes
``bench/results/<date>-webhooks-drain.json``. ``--profile``: py-spy the gateway during each phase
(the share of samples in gateway/webhooks and store/webhooks.py, and the top frames).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import uvloop
from aiohttp import web

from bench.api import create_account
from bench.procs import ALL_CHILDREN, GatewayProc, kill_all
from bench.profile import find_py_spy, summarise
from bench.stats import percentiles
from bench.sysstat import free_port
from gateway.events import MessageEventData
from gateway.ids import id_time, new_id
from store.database import connect
from store.embedded import embedded_database_url
from store.outbox import insert_events

__all__ = ["main"]

TICKS_PER_SECOND = 10
DRAIN_TIMEOUT = 120.0


class Arrivals:
    """The receiver: every event id that arrived and when."""

    def __init__(self) -> None:
        self.latency: dict[str, float] = {}  # event id → ms from its commit to its arrival
        self.requests = 0
        self.done = asyncio.Event()
        self.expected = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        payload = json.loads(body)
        ids = (
            [e["id"] for e in payload["data"]["events"]]
            if payload["type"] == "batch"
            else [request.headers["webhook-id"]]
        )
        self.requests += 1
        for event_id in ids:
            self.latency.setdefault(event_id, (now - id_time(event_id)) * 1000)
        if len(self.latency) >= self.expected:
            self.done.set()
        return web.Response(text="ok")


def _data(i: int) -> MessageEventData:
    return MessageEventData(
        request_id=new_id("req"),
        status="sent",
        to=f"+99890{i % 10**7:07d}",
        device_id="dev_bench",
        device_name="bench phone",
        attempts=1,
        failure_reason=None,
        metadata={"order": str(i)},
        kind="sms",
    )


async def _phase(
    gateway: GatewayProc,
    conn: asyncpg.Connection[Any],
    account_id: str,
    arrivals: Arrivals,
    rate: int,
    seconds: int,
    profile: Path | None,
) -> dict[str, Any]:
    spy = find_py_spy() if profile is not None else None
    if spy is not None:
        proc = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(gateway.pid), "--rate", "250", "--duration", str(seconds),
            "--format", "raw", "--nonblocking", "-o", str(profile),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        ALL_CHILDREN.append(proc)
        await asyncio.sleep(0.5)
    arrivals.latency.clear()
    arrivals.requests = 0
    arrivals.done.clear()
    per_tick = max(1, rate // TICKS_PER_SECOND)
    arrivals.expected = per_tick * TICKS_PER_SECOND * seconds
    cpu0, pg0 = gateway.cpu_seconds(), gateway.postgres_cpu_seconds()
    started = time.monotonic()
    for tick in range(TICKS_PER_SECOND * seconds):
        rows = [
            (new_id("evt"), account_id, "message.sent", _data(tick * per_tick + i)) for i in range(per_tick)
        ]
        await insert_events(conn, rows)
        await asyncio.sleep(max(0.0, started + (tick + 1) / TICKS_PER_SECOND - time.monotonic()))
    await asyncio.wait_for(arrivals.done.wait(), DRAIN_TIMEOUT)
    wall = time.monotonic() - started
    cpu, pg = gateway.cpu_seconds() - cpu0, gateway.postgres_cpu_seconds() - pg0
    n = len(arrivals.latency)
    shares = None
    if spy is not None and profile is not None:
        await asyncio.wait_for(proc.wait(), seconds + 30)
        shares = await asyncio.to_thread(_shares, profile)
    return {
        "profile": shares,
        "events": n,
        "requests": arrivals.requests,
        "seconds": round(wall, 2),
        "delivered_per_s": round(n / wall),
        "latency_ms": percentiles(list(arrivals.latency.values())),
        "gateway_cpu_ms_per_1000": round(cpu * 1000 * 1000 / n),
        "postgres_cpu_ms_per_1000": round(pg * 1000 * 1000 / n),
    }


def _shares(path: Path) -> dict[str, Any] | None:
    """Of the gateway's samples: the share with gateway/webhooks on the stack, and the top frames."""
    if not path.exists():
        return None
    raw = path.read_text()
    total = webhooks = 0
    for line in raw.splitlines():
        stack, _, count = line.strip().rpartition(" ")
        if count.isdigit():
            total += int(count)
            webhooks += int(count) if "gateway/webhooks/" in stack or "store/webhooks.py" in stack else 0
    summary = summarise(raw, top=12)
    return {
        "samples": total,
        "webhooks_percent": round(100 * webhooks / max(1, total), 1),
        "self": summary["self"],
    }


async def run(rate: int, seconds: int, profile_dir: Path | None) -> dict[str, Any]:
    """Both phases; the result document."""
    result: dict[str, Any] = {"rate": rate, "seconds": seconds, "load_average": os.getloadavg()}
    arrivals = Arrivals()
    app = web.Application()
    app.router.add_post("/{path}", arrivals.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    with tempfile.TemporaryDirectory(prefix="relaygate-wh-") as tmp:
        gateway = GatewayProc(Path(tmp) / "gateway", None, {})
        try:
            await gateway.start()
            url = await asyncio.to_thread(embedded_database_url, gateway.data_dir)
            token = await create_account(gateway)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.get(f"{gateway.api}/v1/account") as resp:
                    account_id = (await resp.json())["account"]["id"]
                hook = {"url": f"http://127.0.0.1:{port}/plain", "events": ["message.sent"]}
                async with http.post(f"{gateway.api}/v1/webhooks", json=hook) as resp:
                    plain = (await resp.json())["webhook"]["id"]
                conn = await connect(url)
                try:
                    result["plain"] = await _phase(
                        gateway,
                        conn,
                        account_id,
                        arrivals,
                        rate,
                        seconds,
                        profile_dir and profile_dir / "plain.txt",
                    )
                    async with http.patch(
                        f"{gateway.api}/v1/webhooks/{plain}", json={"enabled": False}
                    ) as resp:
                        assert resp.status == 200
                    batched: dict[str, Any] = {
                        **hook,
                        "url": f"http://127.0.0.1:{port}/batched",
                        "batch": {"max_events": 50, "max_wait_ms": 100},
                    }
                    async with http.post(f"{gateway.api}/v1/webhooks", json=batched) as resp:
                        supported = resp.status == 201
                    if supported:
                        result["batched"] = await _phase(
                            gateway,
                            conn,
                            account_id,
                            arrivals,
                            rate,
                            seconds,
                            profile_dir and profile_dir / "batched.txt",
                        )
                finally:
                    await conn.close()
        finally:
            await gateway.stop()
            await kill_all()
            await runner.cleanup()
    result["load_average_end"] = os.getloadavg()
    return result


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_drain")
    parser.add_argument("--rate", type=int, default=1000, help="events per second written")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of writing")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway during each phase")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    result = uvloop.run(run(options.rate, options.seconds, options.out if options.profile else None))
    print(json.dumps(result, indent=2))
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"{datetime.now(UTC):%Y-%m-%d}-webhooks-drain.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
