"""S1 idle fleet: N relays connected and heartbeating (every 30 s, the default).

For each N: pair enough relays, restart the gateway (a clean process, so its RSS is the idle
baseline with no relay), connect N relays at once from fleet processes, then watch an idle
window. Figures: time to connect them all, gateway RSS per relay over the baseline (KiB), and
idle CPU (% of one core) of the gateway and of PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import Bench
from bench.scenarios import Outcome
from bench.sysstat import raise_fd_limit

__all__ = ["run", "steps"]

CONNECT_TIMEOUT = 90.0
FD_SLACK = 300
"""Descriptors the gateway needs besides relay sockets (PostgreSQL, listeners, HTTP clients, logs)."""


def steps(bench: Bench) -> list[int]:
    """The fleet sizes of this run, capped by the descriptors one gateway process may open."""
    if bench.quick:
        return [100]
    sizes = [1000, 5000, 20000]
    if bench.options.max_relays >= 50000:
        sizes.append(50000)
    cap = fd_cap()
    sizes = [min(n, cap) for n in sizes if n <= max(bench.options.max_relays, 1000)]
    return sorted(set(sizes))


def fd_cap() -> int:
    """Relays one gateway can hold: its RLIMIT_NOFILE (inherited from us) less some slack."""
    return raise_fd_limit() - FD_SLACK


async def run(bench: Bench) -> Outcome:
    """Measure each fleet size."""
    out = Outcome("ok")
    idle_window = 1.0 if bench.quick else 10.0
    results = []
    for n in steps(bench):
        try:
            step = await _step(bench, n, idle_window)
        except Exception as exc:
            await bench.stop_fleets()
            out.status = "partial"
            out.reason = f"{n} relays: {type(exc).__name__}: {exc}"
            break
        results.append(step)
        connected = step["connected"]
        out.rows += [
            (f"{n} relays: connect all (s)", step["connect_seconds"], f"{connected}/{n} connected"),
            (
                f"{n} relays: RSS KiB/relay",
                step["rss_kib_per_relay"],
                f"over {step['rss_baseline_kib'] // 1024} MiB idle baseline",
            ),
            (
                f"{n} relays: idle CPU %",
                step["idle_cpu_percent"],
                f"PostgreSQL {step['idle_postgres_cpu_percent']}%",
            ),
        ]
        if not step["all_connected"]:
            out.status = "partial"
            out.reason = f"only {connected} of {n} relays connected in time; stopped stepping"
            break
    out.figures["steps"] = results
    out.figures["fd_limit"] = raise_fd_limit()
    if not bench.quick and fd_cap() < 20000:
        out.figures["note"] = (
            f"RLIMIT_NOFILE is {raise_fd_limit()} here and cannot be raised (no CAP_SYS_RESOURCE): "
            f"one gateway process can hold at most ~{fd_cap()} relays, so the 20k step ran {fd_cap()}"
        )
        out.rows.append(("fd limit", raise_fd_limit(), out.figures["note"]))
    return out


async def _step(bench: Bench, n: int, idle_window: float) -> dict[str, Any]:
    """One fleet size: connect, idle, measure."""
    pair_seconds = await bench.ensure_paired(n)
    await bench.restart_gateway()
    gw = bench.gateway
    assert gw is not None
    await asyncio.sleep(0.3 if bench.quick else 1.0)
    rss0 = gw.rss_kib()
    await bench.start_fleets(bench.creds[:n])
    started = time.monotonic()
    answers = await bench.fleet_all({"cmd": "connect", "timeout": CONNECT_TIMEOUT})
    connect_seconds = time.monotonic() - started
    connected = sum(a["welcomed"] for a in answers)
    await asyncio.sleep(0.5 if bench.quick else 2.0)
    cpu0, pg0, t0 = gw.cpu_seconds(), gw.postgres_cpu_seconds(), time.monotonic()
    await asyncio.sleep(idle_window)
    cpu1, pg1, t1 = gw.cpu_seconds(), gw.postgres_cpu_seconds(), time.monotonic()
    rss1 = gw.rss_kib()
    still = sum(s["welcomed"] for s in await bench.fleet_all({"cmd": "stats"}))
    await bench.stop_fleets()
    step = {
        "relays": n,
        "connected": connected,
        "still_connected_after_idle": still,
        "connect_seconds": round(connect_seconds, 2),
        "connects_per_s": round(connected / connect_seconds),
        "rss_baseline_kib": rss0,
        "rss_kib": rss1,
        "rss_kib_per_relay": round((rss1 - rss0) / n, 2),
        "idle_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "idle_postgres_cpu_percent": round(100 * (pg1 - pg0) / (t1 - t0), 2),
        "pairing_seconds": round(pair_seconds, 1),
        "all_connected": connected == n and all(a["ok"] for a in answers),
    }
    return step
