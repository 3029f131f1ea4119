"""Overview, Relays and Queue pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import segno
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.responses import Response

from gateway.dashboard.chart import per_minute, svg_chart
from gateway.dashboard.web import Page, Part, action, page
from gateway.timefmt import rfc3339

__all__ = [
    "overview",
    "queue",
    "queue_pause",
    "queue_resume",
    "relay_pair",
    "relay_unpair",
    "relay_update",
    "relays",
]

MAX_PAGES = 10
"""Pages of 200 a page reads at most from a listing (2,000 rows)."""


async def all_pages(p: Page, path: str, key: str, query: dict[str, str] | None = None) -> Part:
    """Every item of a paged listing (up to :data:`MAX_PAGES` pages) as one Part of a list."""
    items: list[Any] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        part = await p.part(
            "GET", path, query={**(query or {}), "limit": "200", **({"cursor": cursor} if cursor else {})}
        )
        if not part.ok:
            return part
        items += getattr(part.value, key)
        cursor = part.value.next_cursor or ""
        if not cursor:
            break
    return Part(value=items)


@page
async def overview(p: Page) -> Response:
    """Health, readiness, queue health, relays online and messages per minute."""
    now = p.services.clock.now()
    health = await p.part("GET", "/api/v1/health")
    readiness = await p.part("GET", "/api/v1/launch/readiness")
    devices = await all_pages(p, "/api/v1/devices", "devices")
    queue = await p.part("GET", "/api/v1/queue")
    chart = None
    messages = Part(error=None)
    if p.can("messages.read"):
        messages = await all_pages(
            p, "/api/v1/messages", "messages", {"since": rfc3339(now - timedelta(minutes=60))}
        )
        if messages.ok:
            minutes = per_minute(messages.value, now)
            labels = {"sent": p._("Sent"), "delivered": p._("Delivered"), "failed": p._("Failed")}
            chart = svg_chart(minutes, p._("Messages per minute, last hour"), labels)
            chart_totals = {name: minutes.total(name) for name in labels}
    online = sum(d.online for d in devices.value) if devices.ok else 0
    template = "_overview_live.html" if p.request.query_params.get("fragment") else "overview.html"
    return p.render(
        template,
        health=health,
        readiness=readiness,
        devices=devices,
        online=online,
        queue=queue,
        chart=chart,
        chart_totals=chart_totals if chart is not None else {},
        messages=messages,
    )


def qr_svg(payload: str) -> Markup:
    """The pairing QR code as inline SVG (segno), dark on white."""
    svg = segno.make(payload, error="m").svg_inline(scale=5, dark="#000", light="#fff", border=3)
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR" ', 1))


async def _relays_page(p: Page, **extra: Any) -> Response:
    devices = await all_pages(p, "/api/v1/devices", "devices")
    template = "_relays_table.html" if p.request.query_params.get("fragment") else "relays.html"
    return p.render(template, devices=devices, **extra)


@page
async def relays(p: Page) -> Response:
    """Every relay's live state; pairing; rename, enable/disable, limits, unpair."""
    return await _relays_page(p)


@action
async def relay_pair(p: Page, form: FormData) -> Response:
    """Create a pairing code: the code in large type, its QR code, counting down."""
    created = await p.part("POST", "/api/v1/devices/pairing-codes", body={})
    qr = qr_svg(created.value.qr_payload) if created.ok else None
    return await _relays_page(p, pairing=created, qr=qr)


def _limit(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


@action
async def relay_update(p: Page, form: FormData) -> Response:
    """Rename, enable/disable and set the limits of one relay."""
    body: dict[str, Any] = {"name": str(form.get("name", "")), "enabled": form.get("enabled") == "on"}
    for name in ("max_in_flight", "per_minute_limit", "per_day_limit"):
        raw = str(form.get(name, "")).strip()
        body[name] = int(raw) if raw.isdigit() else (None if raw == "" else raw)
    device_id = str(p.request.path_params["device_id"])
    done = await p.part("PATCH", "/api/v1/devices/{device_id}", params={"device_id": device_id}, body=body)
    return await p.finish(done, "/relays", "relay-saved", _relays_page)


@action
async def relay_unpair(p: Page, form: FormData) -> Response:
    """Unpair one relay."""
    device_id = str(p.request.path_params["device_id"])
    done = await p.part("DELETE", "/api/v1/devices/{device_id}", params={"device_id": device_id})
    return await p.finish(done, "/relays", "relay-unpaired", _relays_page)


async def _queue_page(p: Page, **extra: Any) -> Response:
    health = await p.part("GET", "/api/v1/queue")
    return p.render("queue.html", health=health, **extra)


@page
async def queue(p: Page) -> Response:
    """Queue health (the queue API), pause and resume."""
    return await _queue_page(p)


@action
async def queue_pause(p: Page, form: FormData) -> Response:
    """Pause the account's queue."""
    done = await p.part("POST", "/api/v1/queue/pause", body={})
    return await p.finish(done, "/queue", "queue-paused", _queue_page)


@action
async def queue_resume(p: Page, form: FormData) -> Response:
    """Resume the account's queue."""
    done = await p.part("POST", "/api/v1/queue/resume", body={})
    return await p.finish(done, "/queue", "queue-resumed", _queue_page)
