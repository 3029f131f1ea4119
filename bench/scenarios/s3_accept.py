"""S3 durable accept: open-loop ``POST /v1/sms/send`` stepped up with no relay online.

Nothing is dispatched: every accepted message is committed and stays ``queued``, so the
figures are the cost of the accept path alone (HTTP, auth, validation, number parsing, text
analysis, the group-committed ``INSERT``, the answer). The sends go to an account of their own
with no relay at all, so the backlog never reaches S2/S4's relays. Per step (same load
generator and stop rules as S2, without the delivery rule):

* accepted messages/s (HTTP 200 answers per second of schedule);
* accept latency p50/p90/p99/max (scheduled instant → answer, so queueing counts);
* gateway CPU ms per 1,000 accepts (and PostgreSQL's), from the step's start to its last answer;
* the backlog (messages queued on the account) and the gateway's RSS after the step.

A step breaks on more than 1 % errors, p99 accept over 250 ms or under 90 % of the offered
rate accepted; stepping stops there. The backlog grows by every accepted message (the bench
gateway runs with ``RELAYGATE_MAX_QUEUE=10000000``; a full run queues ~250,000), and it is
left queued: S3 runs last so no other scenario starts on a gateway holding it.
"""

from __future__ import annotations

from typing import Any

from bench.api import create_account
from bench.context import Bench
from bench.scenarios import Outcome
from bench.stats import percentiles

__all__ = ["run"]

P99_BREAK_MS = 250.0


def rates(bench: Bench) -> list[float]:
    """Offered rates of the steps."""
    if bench.quick:
        return [200, 400]
    return [500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000]


async def step(bench: Bench, token: str, rate: float, duration: float, number_base: int) -> dict[str, Any]:
    """One open-loop step and its figures."""
    gw = bench.gateway
    assert gw is not None
    cpu0, pg0 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
    result = await bench.load(
        mode="sms", rate=rate, duration=duration, number_base=number_base, pool=512, token=token
    )
    cpu1, pg1 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
    accepted = len(result.accepted)
    errors = sum(result.errors.values())
    accept = percentiles(result.latency_ms)
    figures: dict[str, Any] = {
        "offered_per_s": rate,
        "duration_s": duration,
        "scheduled": result.scheduled,
        "accepted": accepted,
        "accepted_per_s": round(accepted / duration),
        "errors": result.errors,
        "sample_error": result.sample_error,
        "latency_ms": {"accept": accept},
        "gateway_cpu_ms_per_1000": round((cpu1 - cpu0) * 1e6 / accepted, 1) if accepted else None,
        "postgres_cpu_ms_per_1000": round((pg1 - pg0) * 1e6 / accepted, 1) if accepted else None,
        "gateway_rss_kib": gw.rss_kib(),
    }
    broken = []
    if errors > 0.01 * max(1, result.scheduled):
        broken.append(f"{errors} errors")
    if accept["p99"] is not None and accept["p99"] > P99_BREAK_MS:
        broken.append(f"p99 accept {accept['p99']} ms > {P99_BREAK_MS}")
    if accepted < 0.9 * rate * duration:
        broken.append(f"accepted only {accepted} of {int(rate * duration)}")
    figures["broken"] = "; ".join(broken) or None
    return figures


async def run(bench: Bench) -> Outcome:
    """Step the rate up on a relay-less account; report each step and the best sustained one."""
    if bench.gateway is None:
        return Outcome("failed", reason="gateway not started")
    await bench.restart_gateway()
    token = await create_account(bench.gateway)
    rss0 = bench.gateway.rss_kib()
    out = Outcome("ok")
    duration = 1.0 if bench.quick else 5.0
    steps: list[dict[str, Any]] = []
    base = 20_000_000
    backlog = 0
    for rate in rates(bench):
        figures = await step(bench, token, rate, duration, base)
        base += int(rate * duration) + 1
        backlog += figures["accepted"]
        figures["backlog"] = backlog
        steps.append(figures)
        out.rows.append(
            (
                f"{rate:.0f}/s offered: accepted/s",
                figures["accepted_per_s"],
                f"p99 accept {figures['latency_ms']['accept']['p99']} ms; "
                f"{figures['gateway_cpu_ms_per_1000']} CPU ms/1000 (PG {figures['postgres_cpu_ms_per_1000']}); "
                f"backlog {backlog}" + (f"; BROKE: {figures['broken']}" if figures["broken"] else ""),
            )
        )
        if figures["broken"]:
            break
    sustained = [s for s in steps if not s["broken"]]
    best = max((s["accepted_per_s"] for s in sustained), default=0)
    rss1 = bench.gateway.rss_kib()
    out.figures = {
        "relays": 0,
        "steps": steps,
        "max_sustained_accepted_per_s": best,
        "backlog": backlog,
        "gateway_rss_kib": {"before": rss0, "after": rss1},
        "rss_bytes_per_queued": round((rss1 - rss0) * 1024 / backlog) if backlog else None,
    }
    if sustained:
        half = min(sustained, key=lambda s: abs(s["offered_per_s"] - best / 2))
        out.figures["at_half_max"] = {
            "offered_per_s": half["offered_per_s"],
            "p99_accept_ms": half["latency_ms"]["accept"]["p99"],
            "gateway_cpu_ms_per_1000": half["gateway_cpu_ms_per_1000"],
        }
        out.rows.append(("max sustained accepted msg/s", best, "no relay online"))
        out.rows.append(
            (
                "p99 accept ms at ~half / CPU ms per 1,000",
                f"{half['latency_ms']['accept']['p99']} / {half['gateway_cpu_ms_per_1000']}",
                f"at {half['offered_per_s']:.0f}/s",
            )
        )
    else:
        out.status = "partial"
        out.reason = steps[0]["broken"] if steps else "no step ran"
    out.rows.append(
        (
            "backlog queued / RSS per queued message",
            backlog,
            f"{out.figures['rss_bytes_per_queued']} bytes (RSS {rss0} → {rss1} KiB)",
        )
    )
    return out
