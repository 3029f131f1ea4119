"""The process's latency histograms and counters, rendered by ``GET /metrics``.

Observing is on hot paths (every accepted message, every state change, every webhook attempt),
so it is kept to a bisect over a fixed tuple of bucket bounds and three in-place additions: no
labels to look up, no objects built per observation. Buckets are not cumulative in memory; the
Prometheus text is made cumulative when scraped.

Like ``prometheus_client``'s default registry, :data:`METRICS` is one per process (the state
changes are observed inside the group-commit writers, which have no other way to it): a test
process running several gateways one after another sees their sum.

Histograms (``relaygate_message_leg_seconds{leg=…}``), from the times stored with the message:

* ``accept`` — a send request (SMS, OTP) from arrival to its committed answer;
* ``accept_to_dispatch`` — acceptance to the first hand-over to a relay;
* ``dispatch_to_ack`` — a hand-over to the relay's ``ack``;
* ``ack_to_sent`` — the ack to the ``sent`` report (the phone's time, kept plausible);
* ``sent_to_delivered`` — ``sent`` to the delivery report;
* ``event_to_webhook`` — an event written to the outbox to its first successful delivery.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable

__all__ = ["LEGS", "LEG_BUCKETS", "LOOP_LAG_BUCKETS", "METRICS", "Histogram", "Metrics", "watch_loop_lag"]

LEG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Seconds; from a group commit (milliseconds) to a delivery report after an hour."""
LOOP_LAG_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LEGS = (
    "accept",
    "accept_to_dispatch",
    "dispatch_to_ack",
    "ack_to_sent",
    "sent_to_delivered",
    "event_to_webhook",
)
WEBHOOK_OUTCOMES = ("succeeded", "failed", "blocked")
LOOP_LAG_INTERVAL = 0.25
"""Seconds between the loop-lag probe's wake-ups."""


class Histogram:
    """Counts of observations per bucket, their sum and their number."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        """Observations per bucket (``<= bounds[i]``, above the previous bound); the last is +Inf."""
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one observation (seconds)."""
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def observe_all(self, values: Iterable[float | None]) -> None:
        """Record each value that is not None (negative ones as 0: clocks of phones)."""
        for value in values:
            if value is not None:
                self.observe(value if value > 0 else 0.0)

    def samples(self, name: str, labels: str = "") -> list[str]:
        """Prometheus text lines: cumulative ``_bucket``s, ``_sum``, ``_count``."""
        sep = "," if labels else ""
        lines = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{braces} {self.total:.6f}")
        lines.append(f"{name}_count{braces} {self.count}")
        return lines


class Metrics:
    """Every histogram and counter the gateway observes (see the module docstring)."""

    def __init__(self) -> None:
        self.legs = {leg: Histogram(LEG_BUCKETS) for leg in LEGS}
        self.accept = self.legs["accept"]
        self.accept_to_dispatch = self.legs["accept_to_dispatch"]
        self.dispatch_to_ack = self.legs["dispatch_to_ack"]
        self.ack_to_sent = self.legs["ack_to_sent"]
        self.sent_to_delivered = self.legs["sent_to_delivered"]
        self.event_to_webhook = self.legs["event_to_webhook"]
        self.loop_lag = Histogram(LOOP_LAG_BUCKETS)
        self.webhook_attempts = dict.fromkeys(WEBHOOK_OUTCOMES, 0)

    def webhook_attempt(self, outcome: str) -> None:
        """Count one webhook attempt by its outcome."""
        if outcome in self.webhook_attempts:
            self.webhook_attempts[outcome] += 1

    def render(self) -> str:
        """These metrics in Prometheus text format."""
        lines = [
            "# HELP relaygate_message_leg_seconds Time a message spends in each leg of its way.",
            "# TYPE relaygate_message_leg_seconds histogram",
        ]
        for leg, histogram in self.legs.items():
            lines += histogram.samples("relaygate_message_leg_seconds", f'leg="{leg}"')
        lines += [
            "# HELP relaygate_webhook_attempts_total Webhook delivery attempts by outcome.",
            "# TYPE relaygate_webhook_attempts_total counter",
            *(
                f'relaygate_webhook_attempts_total{{outcome="{o}"}} {n}'
                for o, n in self.webhook_attempts.items()
            ),
            "# HELP relaygate_event_loop_lag_seconds How late the event loop ran a timer (sampled every 0.25 s).",
            "# TYPE relaygate_event_loop_lag_seconds histogram",
            *self.loop_lag.samples("relaygate_event_loop_lag_seconds"),
        ]
        return "\n".join(lines) + "\n"


METRICS = Metrics()
"""The process's metrics."""


async def watch_loop_lag(metrics: Metrics = METRICS, interval: float = LOOP_LAG_INTERVAL) -> None:
    """Background task ``metrics.loop_lag``: how much later than asked a sleep ends is how long
    the loop was busy with something else (a blocking call, a long burst of work)."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - started - interval))
