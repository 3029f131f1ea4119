"""Soak: a bounded run at a moderate rate with relays churning; does anything grow?

N relays (200; 20 in quick mode) connected, an open-loop send at a moderate rate for the whole
``--duration`` (600 s by default; 20 s in quick mode), and every ``CHURN_EVERY`` seconds a
random 5 % of the relays lose their socket (aborted, no close frame) and reconnect with the
protocol's full-jitter backoff. Every ``SAMPLE_EVERY`` seconds the runner samples the gateway's
RSS (``/proc/<pid>/statm``), its open file descriptors (``/proc/<pid>/fd``) and its asyncio
task count (the ``relaygate_tasks`` gauge of ``/metrics``).

Figures: the median of each over the first window after warm-up (the first 20 % of the run)
against the median of the last window; growth must stay under 5 % (tasks and descriptors get a
slack of the churned relays' share, which come and go by design). And, as in S5, for every
accepted message: lost and duplicated.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from typing import Any

import aiohttp

from bench.context import Bench
from bench.scenarios import Outcome

__all__ = ["run"]

RELAYS, RATE, DURATION = 200, 20.0, 600.0
QUICK_RELAYS, QUICK_RATE, QUICK_DURATION = 20, 10.0, 20.0
CHURN_EVERY = 5.0
CHURN_FRACTION = 0.05
WARMUP_SHARE = 0.2
WINDOW_SHARE = 0.15
MAX_GROWTH_PERCENT = 5.0
DRAIN_TIMEOUT = 90.0
MAX_STATUS_LOOKUPS = 500
_TASKS = re.compile(rb"^relaygate_tasks (\d+)", re.MULTILINE)


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _tasks(http: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with http.get(url) as resp:
            found = _TASKS.search(await resp.read())
    except (aiohttp.ClientError, TimeoutError):
        return None
    return int(found.group(1)) if found else None


def _growth(samples: list[dict[str, Any]], key: str, start: float, end: float) -> dict[str, Any]:
    """Median of ``key`` in the first window after warm-up vs. in the last window."""
    first = [s[key] for s in samples if start <= s["t"] < start + (end - start) * 0.25 and s[key] is not None]
    last = [s[key] for s in samples if s["t"] >= end - (end - start) * 0.25 and s[key] is not None]
    if not first or not last:
        return {"after_warmup": None, "at_end": None, "growth_percent": None}
    a, b = statistics.median(first), statistics.median(last)
    return {"after_warmup": a, "at_end": b, "growth_percent": round(100 * (b - a) / a, 2) if a else None}


async def run(bench: Bench) -> Outcome:
    """Send, churn, sample; then account for every message and judge growth."""
    quick = bench.quick
    n = QUICK_RELAYS if quick else RELAYS
    rate = QUICK_RATE if quick else RATE
    duration = bench.options.duration or (QUICK_DURATION if quick else DURATION)
    sample_every = 1.0 if quick else 10.0
    await bench.ensure_paired(n)
    await bench.restart_gateway()
    gw = bench.gateway
    assert gw is not None
    await bench.start_fleets(bench.creds[:n])
    answers = await bench.fleet_all({"cmd": "connect", "timeout": 60})
    if not all(a["ok"] for a in answers):
        return Outcome("failed", reason=f"relays did not all connect: {[a['welcomed'] for a in answers]}")
    await bench.fleet_all({"cmd": "reset"})
    metrics_url = gw.api.removesuffix("/api") + "/metrics"
    samples: list[dict[str, Any]] = []
    churned = 0
    started = time.monotonic()
    load = asyncio.ensure_future(
        bench.load(mode="sms", rate=rate, duration=duration, number_base=9_000_000, pool=32)
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        next_churn, next_sample = started + CHURN_EVERY, started
        while (now := time.monotonic()) < started + duration and not load.done():
            if now >= next_sample:
                samples.append(
                    {
                        "t": round(now - started, 1),
                        "rss_kib": gw.rss_kib(),
                        "open_files": _open_files(gw.pid),
                        "tasks": await _tasks(http, metrics_url),
                    }
                )
                next_sample += sample_every
            if now >= next_churn:
                churned += sum(
                    a["aborted"] for a in await bench.fleet_all({"cmd": "churn", "fraction": CHURN_FRACTION})
                )
                next_churn += CHURN_EVERY
            await asyncio.sleep(max(0.0, min(next_sample, next_churn) - time.monotonic()))
    result = await load
    accepted_ids = [rid for rid, _ in result.accepted]
    delivered, _ = await bench.wait_delivered(len(accepted_ids), DRAIN_TIMEOUT)
    records = await bench.dump_records()
    stats = await bench.fleet_all({"cmd": "stats"})
    await bench.stop_fleets()
    unconfirmed = [rid for rid in accepted_ids if rid not in records or not records[rid][3]]
    duplicated = [rid for rid in accepted_ids if rid in records and records[rid][4] > 1]
    lost: list[str] = []
    if bench.api is not None:
        for rid in unconfirmed[:MAX_STATUS_LOOKUPS]:
            _, body = await bench.api.call("GET", f"/v1/messages/status?request_id={rid}")
            if not (isinstance(body, dict) and body.get("status") == "delivered"):
                lost.append(rid)
    lost += unconfirmed[MAX_STATUS_LOOKUPS:]
    warm = duration * WARMUP_SHARE
    growth = {key: _growth(samples, key, warm, duration) for key in ("rss_kib", "open_files", "tasks")}
    # Relays reconnecting at the sampling instant hold no socket and no tasks: allow that share.
    slack = 100 * CHURN_FRACTION * 2
    limits = {"rss_kib": MAX_GROWTH_PERCENT, "open_files": MAX_GROWTH_PERCENT + slack}
    limits["tasks"] = MAX_GROWTH_PERCENT + slack
    flat = all(
        g["growth_percent"] is not None and g["growth_percent"] < limits[key] for key, g in growth.items()
    )
    out = Outcome("ok")
    out.figures = {
        "relays": n,
        "send_rate": rate,
        "duration_seconds": duration,
        "warmup_seconds": warm,
        "churned_sockets": churned,
        "reconnects": sum(s["reconnects"] for s in stats),
        "accepted": len(accepted_ids),
        "send_errors": result.errors,
        "delivered": delivered,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "growth": growth,
        "growth_limits_percent": limits,
        "samples": samples,
    }
    for key, label in (("rss_kib", "RSS KiB"), ("open_files", "open files"), ("tasks", "asyncio tasks")):
        g = growth[key]
        out.rows.append(
            (
                f"{label}: after warm-up → end",
                f"{g['after_warmup']} → {g['at_end']}",
                f"{g['growth_percent']} % (limit {limits[key]:g} %)",
            )
        )
    out.rows += [
        ("relay sockets churned", churned, f"{CHURN_FRACTION:.0%} every {CHURN_EVERY:g} s"),
        (
            "messages lost / duplicated",
            f"{len(lost)} / {len(duplicated)}",
            f"of {len(accepted_ids)} accepted",
        ),
    ]
    if not flat or lost or duplicated:
        out.status = "partial"
        out.reason = "growth over the limit, or messages lost/duplicated"
    return out
