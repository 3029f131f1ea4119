"""``python -m bench.accept_inprocess [--sends N] [--concurrency C] [--rounds R]``: the accept
path's own CPU per send, without uvicorn, sockets or a load generator.

Starts a gateway in this process (an embedded PostgreSQL in a temp folder, or ``DATABASE_URL``),
makes an account, and calls its ASGI app directly: ``C`` tasks each send their share of ``N``
``POST /api/v1/sms/send`` requests (a new number each, as S3 does) one after the other, so that
about ``C`` are in flight at once and the group-commit writers see real batches. Every answer
must be 200. The settings are the defaults (the per-number cap window and the opt-out check run
for every new number) but for the API rate limit and the queue cap. Prints, per round, this
process's CPU µs per send (the app, its writers and the asyncpg client; PostgreSQL runs in its
own processes) and the sends per second.

S3 measures the same path end to end, where uvicorn, the client's sockets and two cores shared
with PostgreSQL and the load generator add their costs and their noise; this isolates what the
gateway's own code costs, which is what a change to the accept path changes. Compare runs of the
same hour: the figures move with the machine.
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

import msgspec
import uvloop

from gateway.access.accounts import create_account
from gateway.app import build_app
from gateway.config import Settings
from gateway.logs import configure_logging
from gateway.runtime import Gateway
from store.database import connect
from store.embedded import embedded_database_url

__all__ = ["main"]

TEXT = "Your order 1234 has shipped and arrives on Monday."


def _scope(token: bytes, body: bytes) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/sms/send", "raw_path": b"/api/v1/sms/send",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "headers": [
            (b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + token),
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip


async def _send(app: Any, token: bytes, number: int) -> int:
    body = msgspec.json.encode({"to": f"+99890{number:07d}", "message": TEXT})
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: the answer does not wait for a disconnect
        raise AssertionError

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(token, body), receive, send)
    return status


async def _round(app: Any, token: bytes, first: int, sends: int, concurrency: int) -> tuple[float, float]:
    per_task = sends // concurrency

    async def worker(start: int) -> None:
        for number in range(start, start + per_task):
            status = await _send(app, token, number)
            if status != 200:
                raise RuntimeError(f"send answered {status}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(first + k * per_task) for k in range(concurrency)))
    done = per_task * concurrency
    return (time.process_time() - cpu) * 1e6 / done, done / (time.perf_counter() - wall)


async def run(sends: int, concurrency: int, rounds: int) -> None:
    """The whole benchmark."""
    tmp = tempfile.mkdtemp(prefix="rg-bench-accept-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    url = os.environ.get("DATABASE_URL") or await asyncio.to_thread(embedded_database_url, Path(tmp))
    settings = Settings.from_env(
        {},
        host="127.0.0.1", http_port=0, relay_port=0, database_url=url, data_dir=Path(tmp) / "data",
        api_rate_per_second=1e9, api_rate_burst=1_000_000_000, max_queue_per_account=100_000_000,
    )  # fmt: skip
    gateway = Gateway(settings, announce=lambda _: None)
    await gateway.start()
    try:
        conn = await connect(gateway.database_url)
        try:
            _, token = await create_account(conn, "accept-bench")
        finally:
            await conn.close()
        assert gateway.services is not None
        app = build_app(gateway.services)
        await _round(app, token.encode(), 0, min(sends, 2_000), concurrency)  # warm-up
        for i in range(rounds):
            cpu_us, per_s = await _round(app, token.encode(), (i + 1) * sends, sends, concurrency)
            print(f"round {i + 1}: {cpu_us:.0f} µs CPU per send, {per_s:,.0f} sends/s", flush=True)
    finally:
        await gateway.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.accept_inprocess")
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    uvloop.run(run(args.sends, args.concurrency, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
