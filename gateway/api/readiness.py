"""``GET /v1/launch/readiness``: is this account ready for real traffic? One pass/warn/fail
line per go-live check (see :mod:`gateway.readiness`); ``ready`` when nothing fails."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from gateway.api.routing import Call
from gateway.fleet.devices import device_from_row, telemetry_from_row
from gateway.ids import id_floor
from gateway.readiness import (
    Check,
    RelayFacts,
    check_limits,
    check_queue,
    check_relays,
    check_subscription,
    check_token,
    check_webhook,
    ready,
)
from store.devices import devices_of_account
from store.health import messages_since, webhook_readiness

__all__ = ["Readiness", "launch_readiness"]


class Readiness(msgspec.Struct, kw_only=True):
    """The account's go-live report."""

    ok: bool = True
    ready: bool
    checks: list[Check]


async def launch_readiness(call: Call[None, None]) -> Readiness:
    """Token, subscription, relays, webhook, limits and queue, each pass, warn or fail."""
    assert call.principal is not None
    svc, account = call.services, call.principal.account
    now = svc.clock.now()
    relays: list[RelayFacts] = []
    for row in await devices_of_account(svc.pool, account_id=account.id):
        device = device_from_row(row)
        conn = svc.hub.connection(device.id)
        telemetry = conn.telemetry if conn is not None else telemetry_from_row(row)
        relays.append(
            RelayFacts(
                name=device.name,
                online=svc.hub.is_online(device.id),
                enabled=device.enabled,
                sim_ready=any(bool(s.get("ready")) for s in telemetry.sims),
                battery=telemetry.battery,
                charging=telemetry.charging,
                signal=telemetry.signal,
                per_minute=device.effective_per_minute,
                per_day=device.per_day_limit,
            )
        )
    hooks = await webhook_readiness(svc.pool, account_id=account.id)
    since_id = id_floor("req", (now - timedelta(days=1)).timestamp())
    sent_last_day = await messages_since(svc.pool, account_id=account.id, id_floor=since_id)
    blocked = svc.queue.blocked(account.id)
    checks = [
        check_token(call.principal.scopes),
        check_subscription(account.subscription_expires_at, now),
        check_relays(relays),
        check_webhook(hooks.endpoints, hooks.last_test),
        check_limits(relays, sent_last_day),
        check_queue(
            svc.pipeline.queue_depth(account.id),
            svc.settings.max_queue_per_account,
            blocked.reason if blocked is not None else None,
            blocked.message if blocked is not None else "",
        ),
    ]
    return Readiness(ready=ready(checks), checks=checks)
