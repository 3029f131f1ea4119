"""S5 reconnect storm: every relay's socket dropped at once (no close frame), mid-traffic.

N relays (5,000; 200 in quick mode) connected, an open-loop send running; one third into it
every fleet aborts all its sockets at the same instant and the phones reconnect with the
protocol's full-jitter backoff. Figures: time until 99 % and 100 % are welcomed again, and
for every accepted message: lost (never reported ``delivered`` and acknowledged) and
duplicated (sent by a phone's radio more than once, on any phone).
"""

from __future__ import annotations

import asyncio
import math

from bench.context import Bench
from bench.scenarios import Outcome

__all__ = ["run"]

BACK_TIMEOUT = 60.0
DRAIN_TIMEOUT = 90.0
MAX_STATUS_LOOKUPS = 500


async def run(bench: Bench) -> Outcome:
    """Drop, reconnect, account for every message."""
    n = 200 if bench.quick else 5000
    rate, duration = (100.0, 2.0) if bench.quick else (500.0, 9.0)
    await bench.ensure_paired(n)
    await bench.restart_gateway()
    await bench.start_fleets(bench.creds[:n])
    answers = await bench.fleet_all({"cmd": "connect", "timeout": 120})
    if not all(a["ok"] for a in answers):
        return Outcome("failed", reason=f"relays did not all connect: {[a['welcomed'] for a in answers]}")
    await bench.fleet_all({"cmd": "reset"})
    load = asyncio.ensure_future(bench.load(mode="sms", rate=rate, duration=duration, number_base=8_000_000))
    await asyncio.sleep(duration / 3)
    await bench.fleet_all({"cmd": "drop"})
    back = await bench.fleet_all({"cmd": "wait_back", "timeout": BACK_TIMEOUT}, timeout=BACK_TIMEOUT)
    result = await load
    unanswered = result.errors.get("unanswered after grace", 0)
    times = sorted(t for a in back for t in a["back_after"])
    welcomed = sum(a["welcomed"] for a in back)
    accepted_ids = [rid for rid, _ in result.accepted]
    delivered, _ = await bench.wait_delivered(len(accepted_ids), DRAIN_TIMEOUT)
    records = await bench.dump_records()
    stats = await bench.fleet_all({"cmd": "stats"})
    await bench.stop_fleets()
    unconfirmed = [rid for rid in accepted_ids if rid not in records or not records[rid][3]]
    duplicated = [rid for rid in accepted_ids if rid in records and records[rid][4] > 1]
    t99 = times[max(0, math.ceil(0.99 * n) - 1)] if len(times) >= math.ceil(0.99 * n) else None
    t100 = times[-1] if len(times) >= n else None
    # A phone that never saw the delivered report_ack may still hold the report in its outbox;
    # the message is lost only if the gateway does not have it as delivered either.
    lost_status: dict[str, int] = {}
    lost: list[str] = []
    if bench.api is not None:
        for rid in unconfirmed[:MAX_STATUS_LOOKUPS]:
            status, body = await bench.api.call("GET", f"/v1/messages/status?request_id={rid}")
            key = body.get("status", str(status)) if isinstance(body, dict) else str(status)
            lost_status[key] = lost_status.get(key, 0) + 1
            if key != "delivered":
                lost.append(rid)
    lost += unconfirmed[MAX_STATUS_LOOKUPS:]
    out = Outcome("ok")
    out.figures = {
        "relays": n,
        "send_rate": rate,
        "accepted": len(accepted_ids),
        "scheduled": result.scheduled,
        "send_errors": result.errors,
        "sends_unanswered": unanswered,
        "reconnected": len(times),
        "reconnect_attempts_failed": sum(a.get("reconnects", 0) for a in stats),
        "fleet_errors": [e for a in stats for e in a.get("errors", [])][:10],
        "closed_with": _summed([a.get("closed_with", {}) for a in stats]),
        "back_by_second": _histogram(times),
        "welcomed_at_end": welcomed,
        "seconds_to_99_percent": round(t99, 3) if t99 is not None else None,
        "seconds_to_100_percent": round(t100, 3) if t100 is not None else None,
        "delivered": delivered,
        "lost": len(lost),
        "unconfirmed_by_phones": len(unconfirmed),
        "gateway_status_of_unconfirmed": lost_status,
        "duplicated": len(duplicated),
        "duplicate_send_frames": sum(s["duplicate_sends"] for s in stats),
    }
    out.rows += [
        (f"{n} dropped: 99% back (s)", out.figures["seconds_to_99_percent"], f"{len(times)}/{n} reconnected"),
        (f"{n} dropped: 100% back (s)", out.figures["seconds_to_100_percent"], ""),
        (
            "messages lost / duplicated",
            f"{len(lost)} / {len(duplicated)}",
            f"of {len(accepted_ids)} accepted",
        ),
    ]
    if t100 is None or lost or duplicated:
        out.status = "partial"
        out.reason = "not all relays back, or messages lost/duplicated"
    return out


def _histogram(times: list[float]) -> dict[str, int]:
    """Relays welcomed again per whole second after the drop."""
    counts: dict[str, int] = {}
    for t in times:
        counts[str(int(t))] = counts.get(str(int(t)), 0) + 1
    return counts


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total
