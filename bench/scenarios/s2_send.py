"""S2 send: open-loop ``POST /v1/sms/send`` stepped up until errors or p99 break.

A fleet of fast relays (``per_minute_limit`` 1000, ``max_in_flight`` 50; each acks, reports
``sent`` and ``delivered`` at once) takes everything. A webhook receiver subscribed to
``message.sent`` and ``message.delivered`` (two webhooks per message, as issue 18 defines S2;
runs before the late 2026-12-02 session subscribed ``message.sent`` only) notes arrivals; with
``--webhook-batch N`` its endpoint gets them in batches of up to N. For each step:

* accepted messages/s (HTTP 200 answers per second of schedule);
* latency legs, all on the machine's monotonic clock, shared by the processes:
  ``accept`` (scheduled instant → answer, so queueing counts), ``accept→relay`` (answer → the
  ``send`` frame read by the relay), ``report→stored`` (``sent`` report written → its
  ``report_ack``, which the gateway sends only after the commit), ``stored→webhook``
  (that ``report_ack`` → ``message.sent`` received);
* gateway CPU ms per 1,000 messages (and PostgreSQL's), from the step's start until every
  accepted message was reported ``delivered`` and both its webhooks arrived (or
  ``WEBHOOK_TIMEOUT`` more seconds passed).

A step "breaks" on more than 1 % errors, p99 accept over 250 ms, under 90 % of the offered
rate accepted, or messages not all delivered within 20 s; stepping stops there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.scenarios import Outcome
from bench.stats import percentiles

__all__ = ["run"]

P99_BREAK_MS = 250.0
DRAIN_TIMEOUT = 20.0
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_EVENTS = ["message.sent", "message.delivered"]


def relay_count(bench: Bench) -> int:
    """Relays used (each may take 1000/min: 400 relays can carry 6,600 msg/s)."""
    return 20 if bench.quick else 400


def rates(bench: Bench) -> list[float]:
    """Offered rates of the steps."""
    return [100, 200] if bench.quick else [500, 1000, 2000, 3000, 4000, 5000, 6000]


async def setup(bench: Bench, record: Path | None = None) -> str | None:
    """Fresh gateway, fast relays connected, webhook registered; the webhook id (None: n/a)."""
    n = relay_count(bench)
    creds = await bench.ensure_send_relays(n)
    await bench.restart_gateway()
    assert bench.send_api is not None
    await bench.send_api.set_limits([c.id for c in creds])
    webhook = None
    if not bench.send_webhook:
        webhook = await bench.send_api.register_webhook(
            bench.receiver.url, WEBHOOK_EVENTS, bench.options.webhook_batch
        )
        bench.send_webhook = webhook or "n/a"
    elif bench.send_webhook != "n/a":
        webhook = bench.send_webhook
    await bench.start_fleets(creds, record=record)
    answers = await bench.fleet_all({"cmd": "connect", "timeout": 60})
    if not all(a["ok"] for a in answers):
        raise RuntimeError(f"relays did not all connect: {answers}")
    return webhook


async def step(bench: Bench, rate: float, duration: float, number_base: int, webhook: bool) -> dict[str, Any]:
    """One open-loop step and its figures."""
    gw = bench.gateway
    assert gw is not None
    await bench.fleet_all({"cmd": "reset"})
    bench.receiver.reset()
    cpu0, pg0 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
    result = await bench.load(
        mode="sms", rate=rate, duration=duration, number_base=number_base, pool=512, token=bench.send_token
    )
    delivered, waited = await bench.wait_delivered(len(result.accepted), DRAIN_TIMEOUT)
    if webhook:
        await bench.receiver.wait_for(len(WEBHOOK_EVENTS) * delivered, WEBHOOK_TIMEOUT)
    cpu1, pg1 = gw.cpu_seconds(), gw.postgres_cpu_seconds()
    records = await bench.dump_records()
    to_relay, to_stored, to_webhook = [], [], []
    for request_id, answered in result.accepted:
        rec = records.get(request_id)
        if rec is None:
            continue
        to_relay.append((rec[0] - answered) * 1000)
        if rec[1] and rec[2]:
            to_stored.append((rec[2] - rec[1]) * 1000)
            arrived = bench.receiver.arrivals.get(("message.sent", request_id))
            if arrived is not None:
                to_webhook.append((arrived - rec[2]) * 1000)
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
        "delivered": delivered,
        "drain_seconds": round(waited, 2),
        "latency_ms": {
            "accept": accept,
            "accept_to_relay": percentiles(to_relay),
            "report_to_stored": percentiles(to_stored),
            "stored_to_webhook": percentiles(to_webhook) if webhook else "n/a: /v1/webhooks not implemented",
        },
        "webhooks_received": len(bench.receiver.arrivals),
        "gateway_cpu_ms_per_1000": round((cpu1 - cpu0) * 1e6 / accepted, 1) if accepted else None,
        "postgres_cpu_ms_per_1000": round((pg1 - pg0) * 1e6 / accepted, 1) if accepted else None,
    }
    broken = []
    if errors > 0.01 * max(1, result.scheduled):
        broken.append(f"{errors} errors")
    if accept["p99"] is not None and accept["p99"] > P99_BREAK_MS:
        broken.append(f"p99 accept {accept['p99']} ms > {P99_BREAK_MS}")
    if accepted < 0.9 * rate * duration:
        broken.append(f"accepted only {accepted} of {int(rate * duration)}")
    if delivered < accepted:
        broken.append(f"{accepted - delivered} not delivered after {DRAIN_TIMEOUT}s")
    figures["broken"] = "; ".join(broken) or None
    return figures


async def run(bench: Bench) -> Outcome:
    """Step the rate up; report each step and the best sustained one."""
    out = Outcome("ok")
    webhook = await setup(bench)
    duration = 1.0 if bench.quick else 5.0
    steps: list[dict[str, Any]] = []
    base = 0
    for rate in rates(bench):
        figures = await step(bench, rate, duration, base, webhook is not None)
        base += int(rate * duration) + 1
        steps.append(figures)
        legs = figures["latency_ms"]
        out.rows.append(
            (
                f"{rate:.0f}/s offered: accepted/s",
                figures["accepted_per_s"],
                f"p99 accept {legs['accept']['p99']} ms, accept→relay {legs['accept_to_relay']['p99']} ms, "
                f"report→stored {legs['report_to_stored']['p99']} ms, "
                f"webhook {legs['stored_to_webhook']['p99'] if webhook else 'n/a'} ms; "
                f"{figures['gateway_cpu_ms_per_1000']} CPU ms/1000"
                + (f"; BROKE: {figures['broken']}" if figures["broken"] else ""),
            )
        )
        if figures["broken"]:
            break
    await bench.stop_fleets()
    sustained = [s for s in steps if not s["broken"]]
    best = max((s["accepted_per_s"] for s in sustained), default=0)
    out.figures = {
        "relays": relay_count(bench),
        "webhook_leg": "measured (message.sent, of two)" if webhook else "n/a: /v1/webhooks not implemented",
        "steps": steps,
        "max_sustained_accepted_per_s": best,
    }
    if sustained:
        half = min(sustained, key=lambda s: abs(s["offered_per_s"] - best / 2))
        out.figures["at_half_max"] = {
            "offered_per_s": half["offered_per_s"],
            "p99_accept_ms": half["latency_ms"]["accept"]["p99"],
            "p99_accept_to_relay_ms": half["latency_ms"]["accept_to_relay"]["p99"],
        }
        out.rows.append(("max sustained accepted msg/s", best, f"{relay_count(bench)} relays"))
        out.rows.append(
            (
                "p99 accept / accept→relay ms at ~half",
                f"{half['latency_ms']['accept']['p99']} / {half['latency_ms']['accept_to_relay']['p99']}",
                f"at {half['offered_per_s']:.0f}/s",
            )
        )
    if not webhook:
        out.figures["webhook_note"] = "n/a: POST /v1/webhooks answered 404"
    return out
