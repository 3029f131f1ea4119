"""S0 calibration: what this machine and these libraries do at all, measured in the same run.

* HTTP: a bare Starlette hello-world on uvicorn (httptools, uvloop), driven by the same load
  generator as S2: closed loop (most requests per second), then open loop at half of that
  (latency percentiles).
* WebSocket: a bare ``websockets`` echo server, loaded with bare connections from the same
  fleet code as S1 (connect time, RSS per connection) and a closed-loop echo (round trips/s).
"""

from __future__ import annotations

import asyncio

from bench.context import Bench
from bench.procs import Child, wait_port
from bench.scenarios import Outcome
from bench.stats import percentiles
from bench.sysstat import free_port, proc_sample

__all__ = ["run"]


async def _server(bench: Bench, kind: str) -> tuple[Child, int]:
    port = free_port()
    child = Child("bench.calib_servers", kind, str(port), log=bench.tmp / f"calib-{kind}.log")
    assert child.module
    await child.start_process_only()
    await wait_port(port, 30)
    return child, port


async def run(bench: Bench) -> Outcome:
    """Measure the bare libraries."""
    quick = bench.quick
    out = Outcome("ok")
    f = out.figures

    http, port = await _server(bench, "http")
    try:
        closed = await bench.load(
            mode="hello", port=port, path="/hello", token="", concurrency=32, duration=0.5 if quick else 3.0
        )
        max_rps = closed.ok / closed.elapsed
        half = max(50.0, max_rps / 2)
        opened = await bench.load(
            mode="hello", port=port, path="/hello", token="", rate=half, duration=0.5 if quick else 3.0
        )
    finally:
        await http.terminate()
    f["http_hello_max_rps"] = round(max_rps)
    f["http_hello_half_rate"] = round(half)
    f["http_hello_latency_ms_at_half"] = percentiles(opened.latency_ms)
    out.rows += [
        ("hello-world max req/s", max_rps, "Starlette+uvicorn, closed loop, 32 conns"),
        (
            "hello-world p99 ms at half rate",
            f["http_hello_latency_ms_at_half"]["p99"],
            f"{half:.0f} req/s open loop",
        ),
    ]

    conns = 200 if quick else 5000
    ws, port = await _server(bench, "ws")
    try:
        assert ws.proc is not None
        await asyncio.sleep(0.3)
        rss0 = proc_sample(ws.proc.pid).rss_kib
        await bench.start_fleets([], ws_url=f"ws://127.0.0.1:{port}/", plain=conns)
        answers = await bench.fleet_all({"cmd": "connect", "timeout": 60})
        seconds = max(a["seconds"] or float("nan") for a in answers)
        await asyncio.sleep(0.3 if quick else 1.0)
        rss1 = proc_sample(ws.proc.pid).rss_kib
        echo = await bench.fleet_all({"cmd": "echo", "conns": 100, "seconds": 0.5 if quick else 2.0})
        await bench.stop_fleets()
    finally:
        await ws.terminate()
    f["ws_echo_connections"] = conns
    f["ws_echo_connect_seconds"] = round(seconds, 3)
    f["ws_echo_rss_kib_per_conn"] = round((rss1 - rss0) / conns, 2)
    f["ws_echo_round_trips_per_s"] = round(sum(a["round_trips_per_s"] for a in echo))
    out.rows += [
        (f"websockets echo: connect {conns}", seconds, "seconds"),
        ("websockets echo: RSS KiB/conn", f["ws_echo_rss_kib_per_conn"], "server side"),
        ("websockets echo: round trips/s", f["ws_echo_round_trips_per_s"], "100 conns, closed loop"),
    ]
    return out
