"""S4 OTP: open-loop pairs of ``POST /v1/otp/send`` then ``POST /v1/otp/verify``.

The code is learnt the way a phone-side observer would: the relay fleet appends every SMS it
"sends" to a record file (JSON lines) and the load generator reads the code out of the text.
Figures per step: verified pairs per second, p99 of send and of verify, and of the whole pair
(scheduled instant → verify answered; includes the trip through a relay), and the gateway's
(and PostgreSQL's) CPU ms per 1,000 verified pairs, from the step's start to its last answer. Skipped when
``/v1/otp/send`` answers 404 (OTP not implemented yet).
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench
from bench.scenarios import Outcome
from bench.scenarios.s2_send import setup
from bench.stats import percentiles

__all__ = ["run"]

P99_PAIR_BREAK_MS = 1000.0
"""A pair slower than this at p99 (send, SMS through a relay, verify) breaks the step."""


async def run(bench: Bench) -> Outcome:
    """Step the pair rate up until errors."""
    if bench.gateway is None or bench.api is None:
        return Outcome("failed", reason="gateway not started")
    if not await bench.api.has_otp():
        return Outcome("skipped", reason="POST /v1/otp/send answered 404: OTP endpoints not implemented")
    record = bench.tmp / "otp-record.jsonl"
    await setup(bench, record=record)
    out = Outcome("ok")
    duration = 1.0 if bench.quick else 4.0
    rates = [25.0, 50.0] if bench.quick else [250.0, 500.0, 1000.0, 1500.0, 2000.0]
    steps: list[dict[str, Any]] = []
    base = 5_000_000
    gw = bench.gateway
    for rate in rates:
        cpu0, pg0 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
        result = await bench.load(
            mode="otp",
            rate=rate,
            duration=duration,
            number_base=base,
            record=str(record),
            pool=512,
            token=bench.send_token,
        )
        cpu1, pg1 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
        base += int(rate * duration) + 1
        errors = sum(result.errors.values())
        figures: dict[str, Any] = {
            "offered_pairs_per_s": rate,
            "verified": result.verified,
            "verified_pairs_per_s": round(result.verified / duration),
            "errors": result.errors,
            "sample_error": result.sample_error,
            "gateway_cpu_ms_per_1000_pairs": round((cpu1 - cpu0) * 1e6 / result.verified, 1)
            if result.verified
            else None,
            "postgres_cpu_ms_per_1000_pairs": round((pg1 - pg0) * 1e6 / result.verified, 1)
            if result.verified
            else None,
            "latency_ms": {
                "send": percentiles(result.latency_ms),
                "code_seen": percentiles(result.code_wait_ms),
                "verify": percentiles(result.verify_ms),
                "pair": percentiles(result.pair_ms),
            },
        }
        steps.append(figures)
        lat = figures["latency_ms"]
        out.rows.append(
            (
                f"{rate:.0f} pairs/s offered: verified/s",
                figures["verified_pairs_per_s"],
                f"p99 send {lat['send']['p99']} ms, verify {lat['verify']['p99']} ms, pair {lat['pair']['p99']} ms; "
                f"{figures['gateway_cpu_ms_per_1000_pairs']} CPU ms/1000 pairs "
                f"(PG {figures['postgres_cpu_ms_per_1000_pairs']})",
            )
        )
        p99_pair = figures["latency_ms"]["pair"]["p99"]
        if (
            errors > 0.01 * max(1, result.scheduled)
            or result.verified < 0.9 * rate * duration
            or (p99_pair is not None and p99_pair > P99_PAIR_BREAK_MS)
        ):
            figures["broken"] = (
                f"{errors} errors, {result.verified} verified of {int(rate * duration)}, p99 pair {p99_pair} ms"
            )
            break
    await bench.stop_fleets()
    out.figures = {
        "steps": steps,
        "max_verified_pairs_per_s": max(
            (s["verified_pairs_per_s"] for s in steps if "broken" not in s), default=0
        ),
    }
    if not any("broken" not in s for s in steps) and steps:
        out.status = "partial"
        out.reason = steps[0].get("broken")
    return out
