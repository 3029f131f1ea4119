"""``GET /metrics``: Prometheus text format, process-wide aggregates only (no account data):
the live gauges read here, plus the latency histograms and counters of :mod:`gateway.metrics`.

Unauthenticated like health; expose the API port to your scraper, not to the internet, or
block ``/metrics`` at the proxy.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from gateway import __version__
from gateway.metrics import METRICS

__all__ = ["metrics"]

PRIORITY_NAMES = ("otp", "high", "normal", "low")


def _line(name: str, kind: str, help_text: str, value: float) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {value:g}\n"


def _by_priority(depths: tuple[int, int, int, int]) -> str:
    lines = [
        "# HELP relaygate_queue_depth_by_priority Messages waiting for a relay, by priority.",
        "# TYPE relaygate_queue_depth_by_priority gauge",
        *(
            f'relaygate_queue_depth_by_priority{{priority="{name}"}} {n}'
            for name, n in zip(PRIORITY_NAMES, depths, strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    """The gateway's live counters and gauges."""
    svc = request.app.state.services
    pipeline, hub = svc.pipeline, svc.hub
    parts = [
        f'# HELP relaygate_info Build information.\n# TYPE relaygate_info gauge\nrelaygate_info{{version="{__version__}"}} 1\n',
        _line(
            "relaygate_uptime_seconds",
            "gauge",
            "Seconds since the gateway started.",
            svc.clock.monotonic() - svc.started_at,
        ),
        _line(
            "relaygate_tasks",
            "gauge",
            "asyncio tasks alive in the gateway (flat under steady load; growth is a leak).",
            len(asyncio.all_tasks()),
        ),
        _line("relaygate_relays_connected", "gauge", "Relay sockets open.", hub.connection_count),
        _line("relaygate_relays_online", "gauge", "Relays that said hello.", hub.online_count),
        _line(
            "relaygate_queue_depth",
            "gauge",
            "Messages waiting for a relay.",
            pipeline.scheduler.queue_depth(),
        ),
        _line(
            "relaygate_in_flight",
            "gauge",
            "Messages handed to relays and not finished.",
            pipeline.scheduler.in_flight(),
        ),
        _line(
            "relaygate_messages_accepted_total",
            "counter",
            "Messages accepted (committed and queued), over every send path.",
            pipeline.accepted,
        ),
        _line(
            "relaygate_accept_batches_total",
            "counter",
            "Group commits of accepted messages.",
            pipeline.accepts.batches,
        ),
        _line(
            "relaygate_transitions_total",
            "counter",
            "Message state changes stored.",
            pipeline.transitions.items,
        ),
        _line(
            "relaygate_transition_batches_total",
            "counter",
            "Group commits of state changes.",
            pipeline.transitions.batches,
        ),
        _line(
            "relaygate_webhook_attempts_in_progress",
            "gauge",
            "Webhook requests in flight.",
            svc.webhooks.in_progress,
        ),
        _by_priority(pipeline.scheduler.queue_depths()),
        METRICS.render(),
    ]
    return Response("".join(parts), media_type="text/plain; version=0.0.4")
