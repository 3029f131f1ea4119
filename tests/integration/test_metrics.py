"""``GET /metrics`` after real traffic (simulated relays, a real webhook receiver): every leg's
histogram, webhook attempts by outcome, event-loop lag and queue depth by priority move, the
text is well-formed Prometheus exposition, and every metric the Grafana dashboard in
docs/grafana/ queries is served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from gateway.metrics import LEGS, Histogram
from gateway.sim.relay import RelayFleet
from tests.harness import ApiClient, eventually, fleet_options, make_account, start_gateway
from tests.webhook_receiver import Receiver

DASHBOARD = Path(__file__).parent.parent.parent / "docs" / "grafana" / "relaygate.json"
SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="[^"]*"(?:,|(?=\})))*\})? (-?[0-9.e+-]+|\+Inf|NaN)$')
TO = "+998901234567"


def parse(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of every sample; every line must be a comment or a sample."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def dashboard_metrics() -> set[str]:
    """Metric names the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs and all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dashboard["panels"])
    return {name for expr in exprs for name in re.findall(r"\brelaygate_[a-z_]+", expr)}


async def scrape(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The gateway's metrics, parsed."""
    async with session.get(base.removesuffix("/api") + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        return parse(await resp.text())


async def test_metrics_after_traffic_and_dashboard(database_url: str, session: aiohttp.ClientSession) -> None:
    """SMS and OTP delivered through two simulated relays with a webhook endpoint: every leg's
    count and the succeeded webhook attempts grow, loop lag is sampled, depth by priority is
    shown, and each metric of the Grafana dashboard exists."""
    running = await start_gateway(database_url)
    _, token = await make_account(database_url, "shop")
    api = ApiClient(session, running.base_url, token)
    receiver = Receiver()
    await receiver.start()
    fleet = await RelayFleet.start(fleet_options(running, token, 2))
    try:
        before = await scrape(session, running.base_url)
        status, _, _ = await api.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["message.delivered"]}
        )
        assert status == 201
        ids = [
            (await api.post("/v1/sms/send", json={"to": TO, "message": f"m{i}"}))[1]["request_id"]
            for i in range(3)
        ]
        assert (await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}))[0] == 200
        await receiver.wait_for("/hook", 4, timeout=20)

        async def moved() -> dict[str, float] | None:
            after = await scrape(session, running.base_url)
            grew = all(
                after[f'relaygate_message_leg_seconds_count{{leg="{leg}"}}']
                > before[f'relaygate_message_leg_seconds_count{{leg="{leg}"}}']
                for leg in LEGS
            )
            return after if grew else None

        after = await eventually(moved, what="every leg observed")
        accept = 'relaygate_message_leg_seconds_count{leg="accept"}'
        assert after[accept] - before[accept] == 4  # three SMS and one OTP
        succeeded = 'relaygate_webhook_attempts_total{outcome="succeeded"}'
        assert after[succeeded] - before[succeeded] >= 4
        assert after["relaygate_event_loop_lag_seconds_count"] >= 1
        for leg in LEGS:  # cumulative buckets: +Inf holds every observation
            assert (
                after[f'relaygate_message_leg_seconds_bucket{{leg="{leg}",le="+Inf"}}']
                == after[f'relaygate_message_leg_seconds_count{{leg="{leg}"}}']
            )
        assert {
            f'relaygate_queue_depth_by_priority{{priority="{p}"}}' for p in ("otp", "high", "normal", "low")
        } <= set(after)
        served = {re.sub(r"\{.*", "", key) for key in after}
        missing = sorted(dashboard_metrics() - served)
        assert not missing, f"the dashboard queries metrics the gateway does not serve: {missing}"
        assert len(ids) == 3
    finally:
        await fleet.stop()
        await receiver.stop()
        await running.stop()


def test_histogram_buckets_are_cumulative_on_the_wire() -> None:
    """An observation lands in the first bucket whose bound is >= it; the text is cumulative
    with +Inf = count, and negative values (phone clocks) count as 0."""
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    histogram.observe_all([None, -2.0])
    assert histogram.buckets == [3, 1, 1]
    assert histogram.samples("x", 'leg="a"') == [
        'x_bucket{leg="a",le="0.1"} 3',
        'x_bucket{leg="a",le="1"} 4',
        'x_bucket{leg="a",le="+Inf"} 5',
        'x_sum{leg="a"} 3.650000',
        'x_count{leg="a"} 5',
    ]
